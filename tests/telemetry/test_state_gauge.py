"""gateway_state_backend_up: read from the shared state's health at each collection, in the
in-memory reader and on /metrics."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, NumberDataPoint

from app.config import load_settings
from app.resilience.shared_state import MEMORY_HEALTH, StateHealth
from app.telemetry import STATE_BACKEND_UP, Telemetry
from tests.gateway import running_gateway
from tests.support import free_port


def gauge(reader: InMemoryMetricReader) -> dict[str, float]:
    """backend -> value of the state gauge in one collection."""
    data = reader.get_metrics_data()
    found: dict[str, float] = {}
    for resource in data.resource_metrics if data else ():
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name == STATE_BACKEND_UP:
                    assert metric.unit == "{state}"  # not "1": OTLP translation would add _ratio
                    for point in metric.data.data_points:
                        assert isinstance(point, NumberDataPoint)
                        found[str(point.attributes["backend"])] = point.value  # type: ignore[index]
    return found


@pytest.mark.unit
def test_the_gauge_follows_the_health_it_reads_at_each_collection() -> None:
    reader = InMemoryMetricReader()
    telemetry = Telemetry(load_settings({}), metric_readers=[reader])
    try:
        assert gauge(reader) == {}  # nothing to report until the app says where state lives
        health = [StateHealth("redis", "up", 0.0)]
        telemetry.observe_state_backend(lambda: health[0])
        assert gauge(reader) == {"redis": 1}
        health[0] = StateHealth("redis", "down", 1.0, "Redis unreachable (ConnectionError)")
        assert gauge(reader) == {"redis": 0}
        health[0] = StateHealth("redis", "up", 2.0)
        assert gauge(reader) == {"redis": 1}
        telemetry.observe_state_backend(lambda: MEMORY_HEALTH)
        assert gauge(reader) == {"memory": 1}
    finally:
        telemetry.shutdown()


def metric_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("gateway_state_backend_up")]


def test_metrics_show_memory_up_without_redis_and_redis_down_when_it_does_not_answer() -> None:
    with running_gateway({}) as gw:
        assert metric_lines(gw.client.get("/metrics").text) == ['gateway_state_backend_up{backend="memory"} 1.0']
    with running_gateway({"STATE_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}) as gw:
        # The gateway checks Redis once at start-up, so the first scrape already says down.
        assert metric_lines(gw.client.get("/metrics").text) == ['gateway_state_backend_up{backend="redis"} 0.0']
