"""The rule files: rendered from app/monitoring/rules.py without drift, valid for promtool and
amtool, unit-tested by promtool, routed by severity, documented in the runbook."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from app.config import AlertSettings
from app.monitoring import render
from app.monitoring.rules import alert_rules, recording_rules
from tests.support import stack_binary

from .arrival import PATHS, arriving
from .conftest import ALERTS, REPO, run

PROMETHEUS_RULES = ALERTS / render.PROMETHEUS_RULES
GRAFANA_RULES = ALERTS / render.GRAFANA_RULES
ALERTMANAGER = ALERTS / "alertmanager" / "alertmanager.yml"
RULES = alert_rules(AlertSettings())
LINT = ("--lint=all", "--lint-fatal")


def test_committed_files_are_rendered_from_rules(capsys: pytest.CaptureFixture[str]) -> None:
    assert render.main(["render", "--check", "--out", str(ALERTS)]) == 0, capsys.readouterr().out


def test_check_fails_with_a_diff_on_drift(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert render.main(["render", "--out", str(tmp_path)]) == 0
    rules = tmp_path / render.PROMETHEUS_RULES
    rules.write_text(rules.read_text().replace("< 0.95", "< 0.9"))
    capsys.readouterr()
    assert render.main(["render", "--check", "--out", str(tmp_path)]) == 1
    diff = capsys.readouterr().out
    assert "-    expr: provider_operation:provider_client_request_success:ratio5m < 0.9 " in diff
    assert "+    expr: provider_operation:provider_client_request_success:ratio5m < 0.95 " in diff


def test_variants_carry_their_timing(tmp_path: Path) -> None:
    args = ["--window", "30s", "--for", "10s", "--eval-interval", "5s", "--min-requests", "3",
            "--event-loop-lag-warning", "250ms"]
    assert render.main(["render", "--out", str(tmp_path), *args]) == 0
    (group,) = yaml.safe_load((tmp_path / render.PROMETHEUS_RULES).read_text())["groups"]
    assert group["interval"] == "5s"
    budget = {r.name for r in RULES if r.slo is not None}
    alerts = [r for r in group["rules"] if "alert" in r and r["alert"] not in budget]
    assert {r["for"] for r in alerts} == {"10s"}
    # The error-budget rules keep their own windows (SLO_TIME_SCALE scales them, not --window).
    records = [r for r in group["rules"] if "record" in r and ":slo_" not in r["record"]
               and not re.search(r"_(error|slow):ratio", r["record"])]
    assert records and all("[30s]" in r["expr"] for r in records)
    assert ">= 3" in alerts[0]["expr"]
    [lag] = [r for r in alerts if r["alert"] == "GatewayEventLoopLagHigh"]
    assert lag["expr"].endswith(" > 0.25")
    grafana = yaml.safe_load((tmp_path / render.GRAFANA_RULES).read_text())
    assert {g["interval"] for g in grafana["groups"]} == {"10s"}, "Grafana's 10 s scheduler tick"
    result = run(stack_binary("promtool"), "check", "rules", *LINT, tmp_path / render.PROMETHEUS_RULES)
    assert result.returncode == 0, result.stdout + result.stderr


def test_prometheus_rules_shape() -> None:
    (group,) = yaml.safe_load(PROMETHEUS_RULES.read_text())["groups"]
    records = [r["record"] for r in group["rules"] if "record" in r]
    assert records == [r.record for r in recording_rules(AlertSettings())]
    level_metric_operations = re.compile(r"[a-z_]+:[a-z_]+:[a-z0-9_]+")
    assert all(level_metric_operations.fullmatch(name) for name in records), records
    alerts = [r for r in group["rules"] if "alert" in r]
    assert [(a["alert"], a["labels"]["severity"]) for a in alerts] == [(r.name, r.severity) for r in RULES]
    for alert, rule in zip(alerts, RULES, strict=True):
        budget = {"budget_left"} if rule.slo is not None else set()
        assert alert["for"] == ("0s" if rule.slo is not None else "1m")
        assert set(alert["annotations"]) == {"summary", "description", "runbook_url", *budget}
        for label in rule.by:  # says which provider operation, or which state backend
            assert f"{{{{ $labels.{label} }}}}" in alert["annotations"]["description"], rule.name
    state = next(a for a in alerts if a["alert"] == "GatewayStateBackendDown")
    assert state["expr"] == "min by (backend) (gateway_state_backend_up) == 0"
    assert state["labels"] == {"severity": "warning"}
    for rule in group["rules"]:
        assert not re.search(r"\b(job|instance)\s*=", rule["expr"]), rule["expr"]
        # `le` only as a regex of both spellings of a bound: the exporter's "5", Prometheus 3's "5.0".
        assert set(re.findall(r'\ble\s*=~?\s*"[^"]*"', rule["expr"])) <= {'le="+Inf"', 'le=~"5|5\\\\.0"'}, rule["expr"]


def test_promtool_lints_the_rules_and_the_config() -> None:
    promtool = stack_binary("promtool")
    result = run(promtool, "check", "rules", *LINT, PROMETHEUS_RULES)
    assert result.returncode == 0, result.stdout + result.stderr
    result = run(promtool, "check", "config", *LINT, ALERTS / "prometheus" / "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_scaled_profile_is_rendered_and_valid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The error-budget tests' rule file is the committed rules with the SLO windows divided by
    60 and the test spend budgets (the drift check above covers it); promtool lints it like the
    others. The budgets render from the environment as from the profile, into the Grafana and
    Kubernetes rules too."""
    scaled = yaml.safe_load((ALERTS / render.SCALED_RULES).read_text())
    (group,) = scaled["groups"]
    assert group["interval"] == "5s"
    records = [r["record"] for r in group["rules"] if "record" in r]
    assert "provider_operation:slo_availability:burnrate72m" in records  # 3d / 60
    assert "provider_operation:provider_client_request_error:ratio12h" in records  # the 30d period / 60
    result = run(stack_binary("promtool"), "check", "rules", *LINT, ALERTS / render.SCALED_RULES)
    assert result.returncode == 0, result.stdout + result.stderr
    for provider, budget in render.TEST_SPEND_BUDGETS.items():
        for period, usd in (("DAILY", budget.daily), ("MONTHLY", budget.monthly)):
            if usd is not None:
                monkeypatch.setenv(f"{provider.upper()}_BUDGET_{period}_USD", str(usd))
    assert render.main(["render", "--from-env", "--out", str(tmp_path), "--slo-time-scale", "60",
                        "--eval-interval", "5s", "--kubernetes-out", str(tmp_path / "k8s")]) == 0
    assert (tmp_path / render.PROMETHEUS_RULES).read_text().split("\n", 2)[2] == (
        (ALERTS / render.SCALED_RULES).read_text().split("\n", 2)[2])
    # ProviderBudgetBurn's calendar-month term reaches all three engines' files.
    month = 'max by (provider) (provider_spend_usd{provider="deepgram",period="month"}) / 30 >= 1'
    for path in (render.PROMETHEUS_RULES, render.GRAFANA_RULES, Path("k8s") / render.KUBERNETES_RULES):
        assert month in (tmp_path / path).read_text(), path
    # The drift check covers it: every rendering writes it beside the rule files.
    out = tmp_path / "again"
    assert render.main(["render", "--out", str(out)]) == 0
    drifted = out / render.SCALED_RULES
    drifted.write_text(drifted.read_text().replace("[72m]", "[73m]"))
    assert render.main(["render", "--check", "--out", str(out)]) == 1


@pytest.mark.parametrize("path", PATHS)
def test_promtool_unit_tests_pass(path: str, tmp_path: Path) -> None:
    """The committed cases, with the series as they arrive by ``path`` (:mod:`.arrival`)."""
    files = sorted((ALERTS / "tests").glob("*.yml"))
    assert files
    tests = tmp_path / "tests"
    tests.mkdir()
    shutil.copytree(ALERTS / "prometheus", tmp_path / "prometheus")
    for file in files:
        (tests / file.name).write_text(arriving(file.read_text(), path))
    result = run(stack_binary("promtool"), "test", "rules", *sorted(tests.iterdir()))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(files)


def test_amtool_checks_the_alertmanager_config() -> None:
    result = run(stack_binary("amtool"), "check-config", ALERTMANAGER)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(("labels", "receiver"), [
    (["severity=critical"], "critical"),
    (["severity=warning"], "warning"),
    ([], "default"),
])
def test_routes_by_severity(labels: list[str], receiver: str) -> None:
    values = {"provider": "sarvam", "operation": "translate", "backend": "redis", "instance": "gateway-a:8000"}
    for name, by in {(r.name, r.by) for r in RULES}:
        identity = [f"{label}={values[label]}" for label in by]
        result = run(stack_binary("amtool"), "config", "routes", "test", f"--config.file={ALERTMANAGER}",
                     f"--verify.receivers={receiver}", f"alertname={name}", *identity, *labels)
        assert result.returncode == 0 and result.stdout.strip() == receiver, result.stdout + result.stderr


def test_alertmanager_groups_inhibits_and_resolves() -> None:
    config = yaml.safe_load(ALERTMANAGER.read_text())
    identity = {label for r in RULES for label in r.by}  # provider, operation, backend and instance
    assert identity == {"provider", "operation", "backend", "instance"}
    assert config["route"]["group_by"] == ["alertname", "provider", "operation", "backend", "instance"]
    (inhibit,) = config["inhibit_rules"]
    assert inhibit["source_matchers"] == ['severity="critical"']
    assert inhibit["target_matchers"] == ['severity="warning"']
    assert set(inhibit["equal"]) == {"alertname"} | identity
    hooks = [w for r in config["receivers"] for w in r["webhook_configs"]]
    assert hooks and all(w["send_resolved"] for w in hooks)


def test_runbook_has_a_section_per_alert() -> None:
    headings = re.findall(r"^## (.+)$", (ALERTS / "RUNBOOK.md").read_text(), re.MULTILINE)
    anchors = {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-") for h in headings}
    for rule in alert_rules(render.scaled(AlertSettings())):  # the profile with spend budgets: every alert
        path, anchor = rule.runbook_url.split("#")
        assert (REPO / path).exists() and anchor in anchors, rule.runbook_url


def test_grafana_rules_shape() -> None:
    provisioning = yaml.safe_load(GRAFANA_RULES.read_text())
    datasources = yaml.safe_load((REPO / "dashboards/provisioning/datasources/prometheus.yaml").read_text())
    prometheus_uid = next(d["uid"] for d in datasources["datasources"] if d["type"] == "prometheus")
    assert provisioning["apiVersion"] == 1
    rendered = []
    for group in provisioning["groups"]:
        titles = [r["title"] for r in group["rules"]]
        assert len(titles) == len(set(titles)), "Grafana wants unique titles in a folder"
        for rule in group["rules"]:
            rendered.append((rule["title"], rule["labels"]["severity"]))
            query, reduce, threshold = rule["data"]
            assert query["datasourceUid"] == prometheus_uid
            assert ":" not in re.sub(r"\[[^\]]*\]|\{[^}]*\}", "", query["model"]["expr"]), "no recording rule"
            assert reduce["model"]["type"] == "reduce" and reduce["model"]["expression"] == query["refId"]
            assert threshold["model"]["type"] == "threshold"
            assert threshold["model"]["expression"] == reduce["refId"]
            assert rule["condition"] == threshold["refId"]
            assert rule["noDataState"] == "OK", "absent data never fires"
            assert rule["for"] == ("0s" if rule["title"].endswith("BudgetBurn") else "1m")
            assert set(rule["annotations"]) == {"summary", "description", "runbook_url"}
            assert "$value " not in rule["annotations"]["description"]
    assert sorted(rendered) == sorted((r.name, r.severity) for r in RULES)


def test_per_provider_objectives_are_rendered_from_the_environment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--from-env`` with ``P_SLO_*``: one objective series per provider, and the slow ratio
    reads each provider's own bucket; promtool accepts the result."""
    monkeypatch.setenv("SARVAM_SLO_AVAILABILITY", "0.99")
    monkeypatch.setenv("DEEPGRAM_SLO_LATENCY_THRESHOLD", "10")
    assert render.main(["render", "--from-env", "--out", str(tmp_path)]) == 0
    (group,) = yaml.safe_load((tmp_path / render.PROMETHEUS_RULES).read_text())["groups"]
    exprs = {r["record"]: r["expr"] for r in group["rules"] if "record" in r}
    objective = exprs["provider:slo_availability:objective"]
    assert 'label_replace(vector(0.99), "provider", "sarvam", "", "")' in objective
    assert 'label_replace(vector(0.995), "provider", "deepgram", "", "")' in objective
    slow = exprs["provider_operation:provider_client_request_slow:ratio5m"]
    assert 'provider=~"deepgram", le=~"10|10\\\\.0"' in slow and 'provider!~"deepgram", le=~"5|5\\\\.0"' in slow
    result = run(stack_binary("promtool"), "check", "rules", *LINT, tmp_path / render.PROMETHEUS_RULES)
    assert result.returncode == 0, result.stdout + result.stderr
