"""End to end: faults in the simulator fire the same alerts in Prometheus 3 (the rendered rules over
the gateway's metrics, scraped from /metrics or received over OTLP through the Collector), in the
gateway itself (/health/alerts) and, through a real Alertmanager with the committed routing and
inhibition, in the webhook receiver."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import yaml

from tests.support import wait_until

from .arrival import PATHS
from .conftest import POLL, WINDOW_SECONDS, Stack

Alert = tuple[str, str, str, str]
"""(alertname, severity, provider, operation)."""

FIRING: set[Alert] = {
    ("ProviderSuccessRateLow", "warning", "sarvam", "translate"),
    ("ProviderSuccessRateLow", "critical", "sarvam", "translate"),
    ("ProviderCircuitOpen", "critical", "sarvam", "translate"),
    ("ProviderRateLimited", "warning", "sarvam", "translate"),
    # Every attempted call failed: 200x the 0.5% error budget in every window, a page and a ticket.
    ("ProviderErrorBudgetBurn", "critical", "sarvam", "translate"),
    ("ProviderErrorBudgetBurn", "warning", "sarvam", "translate"),
}
# Routed by severity; each critical inhibits its warning.
INHIBITED = {("ProviderSuccessRateLow", "warning", "sarvam", "translate"),
             ("ProviderErrorBudgetBurn", "warning", "sarvam", "translate")}
NOTIFIED: set[tuple[str, Alert]] = {
    ("/critical", ("ProviderErrorBudgetBurn", "critical", "sarvam", "translate")),
    ("/critical", ("ProviderSuccessRateLow", "critical", "sarvam", "translate")),
    ("/critical", ("ProviderCircuitOpen", "critical", "sarvam", "translate")),
    ("/warning", ("ProviderRateLimited", "warning", "sarvam", "translate")),
}


def _alert(labels: dict[str, str]) -> Alert:
    return labels["alertname"], labels["severity"], labels["provider"], labels["operation"]


def prometheus_alerts(stack: Stack, state: str = "firing", path: str = "scrape") -> set[Alert]:
    return {_alert(r["metric"]) for r in stack.query(f'ALERTS{{alertstate="{state}"}}', path)}


def gateway_alerts(stack: Stack) -> set[Alert]:
    response = stack.gateway.client.get("/health/alerts")
    assert response.status_code == 200, response.text
    return {(a["name"], a["severity"], a["provider"], a["operation"])
            for a in response.json()["alerts"] if a["state"] == "firing"}


def notified(stack: Stack, status: str = "firing", path: str = "scrape") -> set[tuple[str, Alert]]:
    return {(n["path"], _alert(a["labels"])) for n in stack.paths[path].sink.received()
            for a in n["payload"]["alerts"] if a["status"] == status}


def alertmanager_alerts(stack: Stack, path: str) -> dict[Alert, dict[str, Any]]:
    response = httpx.get(f"{stack.paths[path].alertmanager}/api/v2/alerts", timeout=5)
    response.raise_for_status()
    return {_alert(a["labels"]): a["status"] for a in response.json()}


@pytest.mark.parametrize("path", PATHS)
def test_prometheus_gateway_and_receiver_agree(stack: Stack, path: str) -> None:
    wait_until(lambda: prometheus_alerts(stack, path=path) == FIRING, 30,
               lambda: f"alerts firing in Prometheus; got {prometheus_alerts(stack, path=path)}", POLL)
    wait_until(lambda: gateway_alerts(stack) == FIRING, 30,
               lambda: f"alerts firing in /health/alerts; got {gateway_alerts(stack)}", POLL)
    assert prometheus_alerts(stack, path=path) == gateway_alerts(stack) == FIRING
    wait_until(lambda: notified(stack, path=path) == NOTIFIED, 30,
               lambda: f"notifications received by the webhook; got {notified(stack, path=path)}", POLL)

    statuses = alertmanager_alerts(stack, path)
    assert set(statuses) == FIRING
    for alert, status in statuses.items():
        if alert in INHIBITED:
            assert status["state"] == "suppressed" and status["inhibitedBy"], (alert, status)
        else:
            assert status["state"] == "active", (alert, status)


def test_gateway_alert_details(stack: Stack) -> None:
    listed = stack.gateway.client.get("/health/alerts").json()["alerts"]
    alerts = {(a["name"], a["severity"]): a for a in listed}
    critical = alerts["ProviderSuccessRateLow", "critical"]
    assert critical["value"] == 0.0 and critical["threshold"] == 0.8
    assert critical["labels"] == {"alertname": "ProviderSuccessRateLow", "provider": "sarvam",
                                  "operation": "translate", "severity": "critical"}
    assert critical["annotations"]["runbook_url"] == "alerts/RUNBOOK.md#providersuccessratelow"
    page = alerts["ProviderErrorBudgetBurn", "critical"]
    assert page["annotations"]["budget_left"].endswith("% of the 30d availability error budget left")
    assert float(page["annotations"]["budget_left"].split("%")[0]) < 0, "every call failed: overspent"
    prometheus = {a["labels"]["severity"]: a for a in httpx.get(
        f"{stack.prometheus}/api/v1/alerts", timeout=5).json()["data"]["alerts"]
        if a["labels"]["alertname"] == "ProviderErrorBudgetBurn"}
    assert prometheus["critical"]["annotations"]["budget_left"].endswith(
        "% of the 30d availability error budget left"), "the query in the template found the recorded budget"
    warning = stack.gateway.client.get("/health/alerts", params={"severity": "warning"}).json()["alerts"]
    assert {a["severity"] for a in warning} == {"warning"}


def test_grafana_rule_queries_find_the_same_conditions(stack: Stack) -> None:
    """The Grafana-managed rules' queries (the same short-window variant), run on the same
    Prometheus, hold for exactly the alerts Prometheus has active."""
    grafana = yaml.safe_load((stack.rules_dir / "grafana" / "alert-rules.yaml").read_text())
    holding: set[Alert] = set()
    for group in grafana["groups"]:
        for rule in group["rules"]:
            query = next(d for d in rule["data"] if d["refId"] == "A")["model"]["expr"]
            evaluator = next(d for d in rule["data"] if d["refId"] == rule["condition"])["model"]
            (condition,) = evaluator["conditions"]
            kind, (threshold,) = condition["evaluator"]["type"], condition["evaluator"]["params"]
            for sample in stack.query(query):
                value = float(sample["value"][1])
                if (value < threshold) if kind == "lt" else (value > threshold):
                    holding.add(_alert({**sample["metric"], "alertname": rule["title"], **rule["labels"]}))
    active = prometheus_alerts(stack) | prometheus_alerts(stack, "pending")
    assert holding == active == FIRING


def test_alerts_resolve_everywhere(stack: Stack) -> None:
    """When the failures leave the window, ProviderSuccessRateLow resolves in both engines and
    the receiver hears it (send_resolved); the breaker is still open, so that alert stays."""
    def success_alerts(alerts: set[Alert]) -> set[Alert]:
        return {a for a in alerts if a[0] == "ProviderSuccessRateLow"}

    # The last failure leaves the window at most WINDOW_SECONDS after this test starts.
    wait_until(lambda: not success_alerts(prometheus_alerts(stack)), WINDOW_SECONDS + 30,
               "success-rate alerts to resolve", POLL)
    wait_until(lambda: not success_alerts(gateway_alerts(stack)), 15, "the gateway to resolve it too", POLL)
    resolved = ("/critical", ("ProviderSuccessRateLow", "critical", "sarvam", "translate"))
    wait_until(lambda: resolved in notified(stack, "resolved"), 15, "the resolved notification", POLL)
    circuit = ("ProviderCircuitOpen", "critical", "sarvam", "translate")
    assert circuit in prometheus_alerts(stack) and circuit in gateway_alerts(stack)


def test_prometheus_scrapes_metrics_with_the_admin_key(stack: Stack) -> None:
    """The gateway runs with METRICS_REQUIRE_AUTH: /metrics refuses a caller without its admin key,
    and every scrape of Prometheus (the committed job's Bearer credentials file) got in."""
    assert httpx.get(f"{stack.gateway.url}/metrics", timeout=5).status_code == 401
    [up] = stack.query('min_over_time(up{job="gateway"}[1h])')
    assert up["value"][1] == "1"
    [state] = stack.query("gateway_state_backend_up")
    assert state["metric"]["backend"] == "memory" and state["value"][1] == "1"
    assert stack.query('ALERTS{alertname="GatewayStateBackendDown"}') == []
