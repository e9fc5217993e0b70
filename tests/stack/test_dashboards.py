"""Grafana dashboards and provisioning, checked offline and against the live stack's Prometheus.

Grafana itself does not run here: the JSON is checked for what Grafana needs (titles, units, the
provisioned datasource) and every panel query runs on the real Prometheus after the stack's
traffic, with Grafana's variables substituted.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from app.config import AlertSettings
from app.monitoring.rules import alert_rules

from .conftest import REPO, Stack

DASHBOARDS = REPO / "dashboards"
FILES = sorted(DASHBOARDS.glob("*.json"))
DATASOURCE = yaml.safe_load((DASHBOARDS / "provisioning" / "datasources" / "prometheus.yaml").read_text())
PROMETHEUS_UID = next(d["uid"] for d in DATASOURCE["datasources"] if d["type"] == "prometheus")
# $__rate_interval and friends as Grafana would expand them over the stack's short history.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "15s", "$__range": "1h"}
# The drill-down dashboard's variables: each panel must show data for one of these.
PROVIDER_CHOICES = [("sarvam", "translate"), ("sarvam", "tts"), ("openai", "chat")]


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            yield from panel.get("panels", [])
        else:
            yield panel


def substitute(expr: str, variables: dict[str, str]) -> str:
    for name in sorted(variables, key=len, reverse=True):
        expr = expr.replace(name, variables[name])
    assert "$" not in expr, f"unsubstituted variable in {expr}"
    return expr


def test_the_two_dashboards_exist() -> None:
    assert [p.name for p in FILES] == ["overview.json", "provider.json"]
    assert len({load(p)["uid"] for p in FILES}) == 2


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_every_panel_has_title_unit_and_the_provisioned_datasource(path: Path) -> None:
    for panel in panels(load(path)):
        assert panel.get("title"), panel
        assert panel["fieldConfig"]["defaults"].get("unit"), panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": PROMETHEUS_UID}, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == PROMETHEUS_UID, panel["title"]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_every_rate_uses_rate_interval(path: Path) -> None:
    for panel in panels(load(path)):
        for target in panel["targets"]:
            ranges = re.findall(r"\b(?:rate|increase|irate)\([^\[]*\[([^\]]+)\]", target["expr"])
            assert all(r == "$__rate_interval" for r in ranges), (panel["title"], target["expr"])


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_threshold_lines_are_the_alert_thresholds(path: Path) -> None:
    """The success-rate and latency lines sit where the rules of app/monitoring/rules.py fire."""
    rules = alert_rules(AlertSettings())
    expected = {
        "Success rate": {r.threshold for r in rules if r.kind == "success_rate"},
        "Latency p50 and p95": {r.threshold for r in rules if r.kind == "latency_p95"},
    }
    by_title = {p["title"]: p for p in panels(load(path))}
    for title, thresholds in expected.items():
        defaults = by_title[title]["fieldConfig"]["defaults"]
        steps = {s["value"] for s in defaults["thresholds"]["steps"] if s["value"] is not None}
        assert steps == thresholds, title
        assert defaults["custom"]["thresholdsStyle"]["mode"].startswith("line"), title


def test_overview_shows_the_state_store_as_up_or_down() -> None:
    [panel] = [p for p in panels(load(DASHBOARDS / "overview.json"))
               if any("gateway_state_backend_up" in t["expr"] for t in p["targets"])]
    [target] = panel["targets"]
    assert target["expr"] == "min by (backend) (gateway_state_backend_up)", "what GatewayStateBackendDown reads"
    [mapping] = panel["fieldConfig"]["defaults"]["mappings"]
    assert {value: m["text"] for value, m in mapping["options"].items()} == {"0": "down", "1": "up"}


def test_provider_dashboard_variables_come_from_label_values() -> None:
    variables = {v["name"]: v for v in load(DASHBOARDS / "provider.json")["templating"]["list"]}
    assert set(variables) == {"provider", "operation"}
    for variable in variables.values():
        assert variable["type"] == "query" and variable["datasource"]["uid"] == PROMETHEUS_UID
        assert variable["definition"].startswith("label_values(")


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


def test_overview_queries_parse_and_return_data(stack: Stack) -> None:
    for panel in panels(load(DASHBOARDS / "overview.json")):
        for target in panel["targets"]:
            result = stack.query(substitute(target["expr"], GRAFANA_VARIABLES))
            assert _has_data(result), (panel["title"], target["expr"])


def test_provider_queries_parse_and_return_data(stack: Stack) -> None:
    for panel in panels(load(DASHBOARDS / "provider.json")):
        for target in panel["targets"]:
            found = []
            for provider, operation in PROVIDER_CHOICES:
                variables = {**GRAFANA_VARIABLES, "$provider": provider, "$operation": operation}
                found.append(_has_data(stack.query(substitute(target["expr"], variables))))
            assert any(found), (panel["title"], target["expr"])


def test_provider_variables_list_the_live_labels(stack: Stack) -> None:
    variables = {v["name"]: v["definition"] for v in load(DASHBOARDS / "provider.json")["templating"]["list"]}
    for name, expected, provider in (("provider", "sarvam", "sarvam"), ("operation", "translate", "sarvam")):
        match = re.fullmatch(r"label_values\((.+), (\w+)\)", variables[name])
        assert match, variables[name]
        selector = match.group(1).replace("$provider", provider)
        response = httpx.get(f"{stack.prometheus}/api/v1/label/{match.group(2)}/values",
                             params={"match[]": selector}, timeout=5)
        assert expected in response.json()["data"], (name, response.text)
