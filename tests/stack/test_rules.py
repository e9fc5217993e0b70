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
    args = ["--window", "30s", "--for", "10s", "--eval-interval", "5s", "--min-requests", "3"]
    assert render.main(["render", "--out", str(tmp_path), *args]) == 0
    (group,) = yaml.safe_load((tmp_path / render.PROMETHEUS_RULES).read_text())["groups"]
    assert group["interval"] == "5s"
    alerts = [r for r in group["rules"] if "alert" in r]
    assert {r["for"] for r in alerts} == {"10s"}
    assert all("[30s]" in r["expr"] for r in group["rules"] if "record" in r)
    assert ">= 3" in alerts[0]["expr"]
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
        assert alert["for"] == "1m"
        assert set(alert["annotations"]) == {"summary", "description", "runbook_url"}
        for label in rule.by:  # says which provider operation, or which state backend
            assert f"{{{{ $labels.{label} }}}}" in alert["annotations"]["description"], rule.name
    state = next(a for a in alerts if a["alert"] == "GatewayStateBackendDown")
    assert state["expr"] == "min by (backend) (gateway_state_backend_up) == 0"
    assert state["labels"] == {"severity": "warning"}
    for rule in group["rules"]:
        assert not re.search(r"\b(job|instance|le)\s*=", rule["expr"]), rule["expr"]


def test_promtool_lints_the_rules_and_the_config() -> None:
    promtool = stack_binary("promtool")
    result = run(promtool, "check", "rules", *LINT, PROMETHEUS_RULES)
    assert result.returncode == 0, result.stdout + result.stderr
    result = run(promtool, "check", "config", *LINT, ALERTS / "prometheus" / "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr


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
    for rule in RULES:
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
            assert rule["for"] == "1m"
            assert set(rule["annotations"]) == {"summary", "description", "runbook_url"}
            assert "$value " not in rule["annotations"]["description"]
    assert sorted(rendered) == sorted((r.name, r.severity) for r in RULES)
