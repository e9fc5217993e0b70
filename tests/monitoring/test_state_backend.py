"""GatewayStateBackendDown in the in-app evaluator: it reads the state store's health at each
evaluation, as Prometheus reads gateway_state_backend_up at each scrape, and fires, resolves and
is listed, delivered and shown like the provider alerts, without a provider or operation."""

from __future__ import annotations

import pytest

from app.monitoring import Monitoring
from app.resilience.shared_state import MEMORY_HEALTH, StateHealth
from tests.gateway import running_gateway
from tests.support import T0, Clock, free_port, wait_until

from .helpers import settings, threshold_alerts

UP = StateHealth("redis", "up", T0)
DOWN = StateHealth("redis", "down", T0, "Redis unreachable (ConnectionError)")
NAME = "GatewayStateBackendDown"


class Store:
    """A state store whose health the test sets."""

    def __init__(self, health: StateHealth) -> None:
        self.health = health

    def __call__(self) -> StateHealth:
        return self.health


def states(m: Monitoring) -> list[tuple[str, str]]:
    return [(a.name, a.state) for a in threshold_alerts(m.evaluate())]


@pytest.mark.unit
def test_down_is_pending_then_fires_after_for_then_resolves_when_it_answers() -> None:
    clock, store = Clock(), Store(UP)
    m = Monitoring(settings(), clock)
    m.observe_state_backend(store)
    assert states(m) == []
    store.health = DOWN
    clock.advance(15)
    assert states(m) == [(NAME, "pending")]
    clock.advance(45)
    assert states(m) == [(NAME, "pending")]
    clock.advance(15)  # 60 s (ALERT_FOR) after it started holding
    assert states(m) == [(NAME, "firing")]
    [alert] = threshold_alerts(m.get_alerts(severity="warning"))
    assert (alert.provider, alert.operation, alert.value, alert.threshold) == (None, None, 0.0, 0.0)
    assert alert.labels == {"alertname": NAME, "backend": "redis", "severity": "warning"}
    assert alert.subject == "redis state backend"
    assert alert.annotations["description"].startswith("The redis state store does not answer")
    assert alert.annotations["runbook_url"] == "alerts/RUNBOOK.md#gatewaystatebackenddown"
    assert alert.since.timestamp() == T0 + 15
    store.health = UP
    clock.advance(15)
    assert states(m) == []
    [resolved] = m.resolved_alerts()
    assert resolved.name == NAME and resolved.resolved_at is not None
    assert resolved.resolved_at.timestamp() == T0 + 90


@pytest.mark.unit
def test_memory_and_an_unset_store_never_fire() -> None:
    clock = Clock()
    m = Monitoring(settings({"ALERT_FOR": "0"}), clock)
    assert states(m) == []  # no health reader: absent data
    m.observe_state_backend(lambda: MEMORY_HEALTH)
    for _ in range(3):
        clock.advance(15)
        assert states(m) == []


@pytest.mark.unit
def test_it_is_delivered_with_its_own_labels() -> None:
    clock, store = Clock(), Store(DOWN)
    m = Monitoring(settings({"ALERT_FOR": "0"}), clock)
    m.observe_state_backend(store)
    assert states(m) == [(NAME, "firing")]
    [notification] = m.evaluator.due(clock())
    assert notification.payload("/health/alerts")["labels"] == {
        "alertname": NAME, "backend": "redis", "severity": "warning"}


@pytest.mark.unit
def test_provider_alerts_keep_their_subject_and_sort_before_it() -> None:
    clock, store = Clock(), Store(DOWN)
    m = Monitoring(settings({"ALERT_FOR": "0"}), clock)
    m.observe_state_backend(store)
    for _ in range(10):
        m.record_request("sarvam.translate", False, 100.0, "upstream_5xx")
    alerts = threshold_alerts(m.evaluate())
    assert [(a.name, a.severity) for a in alerts] == [
        ("ProviderSuccessRateLow", "critical"), (NAME, "warning"), ("ProviderSuccessRateLow", "warning")]
    assert {a.subject for a in alerts} == {"sarvam.translate", "redis state backend"}


@pytest.mark.timeout(30)
def test_health_alerts_lists_it_with_null_provider_and_the_status_page_shows_it() -> None:
    """A gateway whose Redis never answers: the state component is degraded and the alert fires."""
    env = {"STATE_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0", "ALERT_FOR": "0", "ALERT_EVAL_INTERVAL": "0.2"}
    with running_gateway(env) as gw:
        def listed() -> list[dict[str, object]]:
            body = gw.client.get("/health/alerts", params={"severity": "warning"}).json()
            return [a for a in body["alerts"] if a["name"] == NAME and a["state"] == "firing"]

        wait_until(listed, 5, f"{NAME} firing in /health/alerts", interval=0.05)
        [alert] = listed()
        assert alert["provider"] is None and alert["operation"] is None
        assert alert["labels"] == {"alertname": NAME, "backend": "redis", "severity": "warning"}
        assert gw.client.get("/health/alerts", params={"severity": "critical"}).json()["alerts"] == []
        health = gw.client.get("/health/").json()
        assert health["components"]["state"]["status"] == "degraded" and health["firing_alerts"] == 1
        page = gw.client.get("/status")
        assert page.status_code == 200 and f'data-alert="{NAME}"' in page.text
        schema = gw.client.get("/schema/openapi.json")
        assert schema.status_code == 200, schema.text
        provider = schema.json()["components"]["schemas"]["Alert"]["properties"]["provider"]
        assert {"type": "null"} in provider.get("oneOf", []), provider
