"""Grafana dashboards and provisioning, checked offline and against the live stack's Prometheus.

Grafana itself does not run here. The dashboards are rendered by ``python -m app dashboards
render`` from the rules source; the committed JSON must match, type-check against the ``Dashboard``
type of Grafana's published schema (``@grafana/schema``, installed by ``scripts/test.sh`` into
``tests/grafana_schema``), and every panel and annotation query runs on the real Prometheus after
the stack's traffic, with Grafana's variables substituted, and returns series.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from app.config import AlertSettings
from app.dashboards.render import main, render
from app.monitoring.rules import alert_rules

from .conftest import REPO, Stack

DASHBOARDS = REPO / "dashboards"
FILES = sorted(DASHBOARDS.glob("*.json"))
SCHEMA_CHECK = REPO / "tests" / "grafana_schema"
DATASOURCES = DASHBOARDS / "provisioning" / "datasources"
DATASOURCE = yaml.safe_load((DATASOURCES / "prometheus.yaml").read_text())
PROMETHEUS_UID = next(d["uid"] for d in DATASOURCE["datasources"] if d["type"] == "prometheus")
# $__rate_interval and friends as Grafana would expand them over the stack's short history.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "15s", "$__range": "1h"}
# The drill-down dashboard's variables: each panel must show data for one of these.
PROVIDER_CHOICES = [("sarvam", "translate"), ("sarvam", "tts"), ("openai", "chat"), ("deepgram", "stt")]

# Queries of metrics that issue 12 (isolation) adds and this branch does not export yet: they must
# run, but cannot return series here. The lead removes this set when merging issue 12.
# Every signal the issue lists, by a metric (or selector) some panel of the overview must query.
SIGNALS = {
    "request rate, success rate, p95": "provider_client_request_duration_seconds",
    "rejections by reason": "provider_client_rejections_total",
    "overloaded rejections": 'reason="overloaded"',
    "breaker state": "provider_circuit_state",
    "time to first byte": "provider_client_time_to_first_byte_seconds",
    "audio seconds": "provider_client_audio_duration_seconds_total",
    "characters": "provider_client_characters_total",
    "tokens": "gen_ai_client_token_usage",
    "cost": "provider_client_cost_usd_total",
    "spend this month": "provider_spend_usd",
    "GenAI operation duration": "gen_ai_client_operation_duration_seconds",
    "active health checks": "provider_health_check_duration_seconds",
    "in-flight calls": "provider_client_active_requests",
    "concurrency limit": "provider_client_concurrency_limit",
    "event-loop lag": "gateway_event_loop_lag_seconds",
    "shared-state backend": "gateway_state_backend_up",
    "firing alerts": "ALERTS",
    "error budget left": "provider_operation:slo_availability:budget_remaining",
    "burn rates": "provider_operation:slo_latency:burnrate3d",
    "live sessions open": "provider_stream_sessions_active",
    "time to first result": "provider_stream_time_to_first_result_seconds",
    "session duration": "provider_stream_session_duration_seconds",
    "messages relayed": "provider_stream_messages_total",
}


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            yield from panel.get("panels", [])
        else:
            yield panel


def exprs(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, PromQL) of every panel target and annotation."""
    for panel in panels(dashboard):
        for target in panel["targets"]:
            yield panel["title"], target["expr"]
    for annotation in dashboard["annotations"]["list"]:
        yield f"annotation {annotation['name']}", annotation["target"]["expr"]


def by_title(path: Path) -> dict[str, dict[str, Any]]:
    return {p["title"]: p for p in panels(load(path))}


def steps(panel: dict[str, Any]) -> set[float]:
    return {s["value"] for s in panel["fieldConfig"]["defaults"]["thresholds"]["steps"] if s["value"] is not None}


def substitute(expr: str, variables: dict[str, str]) -> str:
    for name in sorted(variables, key=len, reverse=True):
        expr = expr.replace(name, variables[name])
    assert "$" not in expr, f"unsubstituted variable in {expr}"
    return expr


def test_the_two_dashboards_exist() -> None:
    assert [p.name for p in FILES] == ["overview.json", "provider.json"]
    assert len({load(p)["uid"] for p in FILES}) == 2


def test_committed_dashboards_are_rendered_from_the_rules_source() -> None:
    for relative, text in render(AlertSettings()).items():
        assert (DASHBOARDS / relative).read_text() == text, "run `python -m app dashboards render`"


def test_render_writes_the_dashboards_and_check_fails_on_drift(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", "--out", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [p.name for p in FILES]
    assert main(["render", "--check", "--out", str(tmp_path)]) == 0
    drifted = tmp_path / "overview.json"
    drifted.write_text(drifted.read_text().replace('"unit": "reqps"', '"unit": "ops"', 1))
    capsys.readouterr()
    assert main(["render", "--check", "--out", str(tmp_path)]) == 1
    assert '-          "unit": "ops"' in capsys.readouterr().out


# -- Grafana's published schema -----------------------------------------------------------------


def _type_check(tmp_path: Path, dashboards: dict[str, dict[str, Any]]) -> subprocess.CompletedProcess[str]:
    """``tsc`` over one module per dashboard: the JSON as an object literal that ``satisfies`` the
    schema (so unknown fields are errors too) and is assignable to the published ``Dashboard``."""
    tsc = SCHEMA_CHECK / "node_modules" / ".bin" / "tsc"
    if not tsc.exists():
        pytest.fail(f"{tsc} missing: scripts/test.sh installs it (npm ci --prefix tests/grafana_schema)")
    (tmp_path / "node_modules").symlink_to(SCHEMA_CHECK / "node_modules")
    shutil.copy(SCHEMA_CHECK / "schema.ts", tmp_path)
    for name, dashboard in dashboards.items():
        (tmp_path / f"{name}.ts").write_text(
            "import type { Checked, Published } from './schema';\n"
            f"export const dashboard = {json.dumps(dashboard, indent=1)} satisfies Checked;\n"
            "export const published: Published = dashboard;\n")
    (tmp_path / "tsconfig.json").write_text(json.dumps({
        "compilerOptions": {"strict": True, "noEmit": True, "module": "nodenext", "moduleResolution": "nodenext",
                            "target": "es2022", "types": []},
        "files": [f"{name}.ts" for name in dashboards]}))
    return subprocess.run([str(tsc), "-p", str(tmp_path)], capture_output=True, text=True, timeout=120,
                          check=False)


def test_dashboards_conform_to_grafanas_published_dashboard_type(tmp_path: Path) -> None:
    version = json.loads((SCHEMA_CHECK / "node_modules/@grafana/schema/package.json").read_text())["version"]
    assert version == "13.2.3"
    result = _type_check(tmp_path, {p.stem: load(p) for p in FILES})
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_rejects_what_grafana_would_not_read(tmp_path: Path) -> None:
    """The deviations the hand-written dashboards had, an unknown field and a misspelt enum value."""
    dashboard = load(DASHBOARDS / "provider.json")
    dashboard["templating"]["list"][0]["current"] = {}
    dashboard["panels"][2]["colour"] = "red"
    dashboard["panels"][1]["fieldConfig"]["defaults"]["thresholds"]["mode"] = "absolut"
    result = _type_check(tmp_path, {"broken": dashboard})
    assert result.returncode != 0
    for complaint in ("missing the following properties", "'\"colour\"' does not exist", "'\"absolut\"'"):
        assert complaint in result.stdout, result.stdout


# -- panels ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_every_panel_has_title_unit_thresholds_description_and_the_provisioned_datasource(path: Path) -> None:
    for panel in panels(load(path)):
        defaults = panel["fieldConfig"]["defaults"]
        assert panel.get("title") and panel.get("description") and defaults.get("unit"), panel
        assert defaults["thresholds"]["steps"][0]["value"] is None, panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": PROMETHEUS_UID}, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == PROMETHEUS_UID, panel["title"]
    ids = [p["id"] for p in load(path)["panels"]]
    assert len(ids) == len(set(ids)), "Grafana needs unique panel ids"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_every_rate_uses_rate_interval(path: Path) -> None:
    for where, expr in exprs(load(path)):
        ranges = re.findall(r"\b(?:rate|increase|irate)\([^\[]*\[([^\]]+)\]", expr)
        assert all(r == "$__rate_interval" for r in ranges), (where, expr)


def test_the_overview_has_a_panel_for_every_signal() -> None:
    queried = " ".join(expr for _, expr in exprs(load(DASHBOARDS / "overview.json")))
    assert [signal for signal, metric in SIGNALS.items() if metric not in queried] == []


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_threshold_lines_are_the_alert_thresholds(path: Path) -> None:
    """The lines sit where the rules of app/monitoring/rules.py fire."""
    rules = alert_rules(AlertSettings())
    latency = {r.threshold for r in rules if r.kind == "latency_p95"}
    expected = {
        "Success rate": {r.threshold for r in rules if r.kind == "success_rate"},
        "Latency p50 and p95": latency,
        "GenAI operation duration (p95)": latency,
        "Saturation": {r.threshold for r in rules if r.kind == "saturated"},
        # Every pair's factor: 14.4x and 6x page, 3x and 1x open a ticket.
        "Availability burn rate": {p.factor for r in rules if r.kind == "error_budget_burn" and r.slo
                                   for p in r.slo.pairs(r.page)},
        "Latency burn rate": {p.factor for r in rules if r.kind == "latency_budget_burn" and r.slo
                              for p in r.slo.pairs(r.page)},
        "Error budget left": {0.0},
    }
    assert expected["Availability burn rate"] == expected["Latency burn rate"] == {14.4, 6, 3, 1}
    if path.stem == "overview":
        expected["Event-loop lag (p99)"] = {r.threshold for r in rules if r.kind == "event_loop_lag"}
    titled = by_title(path)
    for title, thresholds in expected.items():
        assert steps(titled[title]) == thresholds, title
        assert titled[title]["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]["mode"] == "dashed", title


def test_thresholds_follow_the_rules_settings() -> None:
    """Rendered for other settings (as ``--from-env`` does), the lines move with the rules."""
    settings = dataclasses.replace(AlertSettings(), success_rate_warning=0.9, latency_p95_critical=7.5)
    overview = json.loads(render(settings)[Path("overview.json")])
    titled = {p["title"]: p for p in panels(overview)}
    assert steps(titled["Success rate"]) == {0.9, AlertSettings().success_rate_critical}
    assert steps(titled["Latency p50 and p95"]) == {AlertSettings().latency_p95_warning, 7.5}
    assert "below 90% (warning)" in titled["Success rate"]["description"]


def test_panels_link_the_runbooks_of_their_alerts() -> None:
    runbooks = {r.name: r.runbook_url for r in alert_rules(AlertSettings())}
    titled = by_title(DASHBOARDS / "overview.json")
    firing = {link["title"]: link["url"] for link in titled["Firing alerts"]["links"]}
    for name, url in runbooks.items():
        assert firing[f"Runbook: {name}"] == url
    for title, alert in (("Success rate", "ProviderSuccessRateLow"), ("Latency p50 and p95", "ProviderLatencyHigh"),
                         ("Circuit breaker state", "ProviderCircuitOpen"),
                         ("Rejections by reason", "ProviderRateLimited"), ("Saturation", "ProviderSaturated"),
                         ("Event-loop lag (p99)", "GatewayEventLoopLagHigh"),
                         ("Shared state store", "GatewayStateBackendDown"),
                         ("Availability burn rate", "ProviderErrorBudgetBurn"),
                         ("Latency burn rate", "ProviderLatencyBudgetBurn")):
        urls = [link["url"] for link in titled[title]["links"]]
        assert f"alerts/RUNBOOK.md#{alert.lower()}" in urls, title


def test_traces_and_logs_links_use_provisioned_datasources() -> None:
    uids = {d["uid"]: d for f in DATASOURCES.glob("*.yaml") for d in yaml.safe_load(f.read_text())["datasources"]}
    assert uids["jaeger"]["type"] == "jaeger" and uids["loki"]["type"] == "loki"
    prometheus = uids[PROMETHEUS_UID]["jsonData"]["exemplarTraceIdDestinations"]
    assert prometheus == [{"name": "trace_id", "datasourceUid": "jaeger"}]
    latency = by_title(DASHBOARDS / "overview.json")["Latency p50 and p95"]
    assert any(t.get("exemplar") for t in latency["targets"])
    urls = [link["url"] for link in latency["fieldConfig"]["defaults"]["links"]]
    assert any("%22datasource%22%3A%22jaeger%22" in u for u in urls)
    assert any("%22datasource%22%3A%22loki%22" in u for u in urls)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_firing_alerts_are_annotations(path: Path) -> None:
    [annotation] = load(path)["annotations"]["list"]
    assert annotation["datasource"] == {"type": "prometheus", "uid": PROMETHEUS_UID} and annotation["enable"]
    assert annotation["target"]["expr"].startswith('ALERTS{alertstate="firing"')
    assert "{{alertname}}" in annotation["titleFormat"]


def test_overview_shows_the_state_store_as_up_or_down() -> None:
    panel = by_title(DASHBOARDS / "overview.json")["Shared state store"]
    [target] = panel["targets"]
    assert target["expr"] == "min by (backend) (gateway_state_backend_up)", "what GatewayStateBackendDown reads"
    [mapping] = panel["fieldConfig"]["defaults"]["mappings"]
    assert {value: m["text"] for value, m in mapping["options"].items()} == {"0": "down", "1": "up"}


def test_provider_dashboard_variables_come_from_label_values() -> None:
    variables = {v["name"]: v for v in load(DASHBOARDS / "provider.json")["templating"]["list"]}
    assert set(variables) == {"provider", "operation"}
    for variable in variables.values():
        assert variable["type"] == "query" and variable["datasource"]["uid"] == PROMETHEUS_UID
        assert variable["query"].startswith("label_values(")
        assert set(variable["current"]) == {"text", "value"}


def test_provisioning_points_at_the_dashboards_and_datasource() -> None:
    (datasource,) = [d for d in DATASOURCE["datasources"] if d["type"] == "prometheus"]
    assert DATASOURCE["apiVersion"] == 1 and datasource["url"] == "http://prometheus:9090"
    provider = yaml.safe_load((DASHBOARDS / "provisioning" / "dashboards" / "dashboards.yaml").read_text())
    (files,) = provider["providers"]
    assert files["type"] == "file"
    compose = yaml.safe_load((REPO / "compose.yaml").read_text())
    mounts = [v.split(":") for v in compose["services"]["grafana"]["volumes"]]
    for path in FILES:
        assert [f"./dashboards/{path.name}", f"{files['options']['path']}/{path.name}", "ro"] in mounts


# -- against the live stack's Prometheus ----------------------------------------------------------


def _has_data(result: list[dict[str, Any]]) -> bool:
    return any(math.isfinite(float(sample["value"][1])) for sample in result)


def test_overview_queries_return_data(stack: Stack) -> None:
    for where, expr in exprs(load(DASHBOARDS / "overview.json")):
        result = stack.query(substitute(expr, GRAFANA_VARIABLES))
        assert _has_data(result), (where, expr)


def test_provider_queries_return_data(stack: Stack) -> None:
    for where, expr in exprs(load(DASHBOARDS / "provider.json")):
        found = []
        for provider, operation in PROVIDER_CHOICES:
            variables = {**GRAFANA_VARIABLES, "$provider": provider, "$operation": operation}
            found.append(_has_data(stack.query(substitute(expr, variables))))
        assert any(found), (where, expr)


def test_health_usage_and_gen_ai_panels_show_the_traffic(stack: Stack) -> None:
    """Not just series: the health checks ran and succeeded, TTS counted audio and characters,
    and chat recorded its GenAI duration."""
    titled = by_title(DASHBOARDS / "overview.json")

    def values(title: str, *labels: str) -> dict[tuple[str, ...], float]:
        [target, *_] = titled[title]["targets"]
        result = stack.query(substitute(target["expr"], GRAFANA_VARIABLES))
        return {tuple(s["metric"][label] for label in labels): float(s["value"][1]) for s in result}

    up = values("Health checks: up or down", "provider")
    assert set(up) == {("sarvam",), ("deepgram",), ("openai",), ("rag",)}
    assert set(up.values()) <= {0.0, 1.0}
    assert max(values("Health check latency (p95)", "provider").values()) > 0
    assert values("Audio seconds", "provider", "operation")[("sarvam", "tts")] > 0
    assert values("Characters", "provider", "operation")[("sarvam", "tts")] > 0
    duration = values("GenAI operation duration (p95)", "gen_ai_provider_name", "gen_ai_operation_name")
    assert duration[("openai", "chat")] > 0


def test_provider_variables_list_the_live_labels(stack: Stack) -> None:
    variables = {v["name"]: v["query"] for v in load(DASHBOARDS / "provider.json")["templating"]["list"]}
    for name, expected, provider in (("provider", "sarvam", "sarvam"), ("operation", "translate", "sarvam")):
        match = re.fullmatch(r"label_values\((.+), (\w+)\)", variables[name])
        assert match, variables[name]
        selector = match.group(1).replace("$provider", provider)
        response = httpx.get(f"{stack.prometheus}/api/v1/label/{match.group(2)}/values",
                             params={"match[]": selector}, timeout=5)
        assert expected in response.json()["data"], (name, response.text)
