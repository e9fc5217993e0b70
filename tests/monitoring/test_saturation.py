"""ProviderSaturated and GatewayEventLoopLagHigh in the in-app engine: the recorder's inputs
(in-flight calls against the limit, overloaded refusals, the loop-lag histogram) on an injected
clock, the evaluator reading them, and the alerts in /health/alerts, /health/ and the status page."""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Mapping

import pytest
from litestar.testing import AsyncTestClient

from app.calls import LOOP_LAG_BUCKETS, CallSpec, ErrorType
from app.config import load_settings
from app.main import create_app
from app.monitoring import Monitoring
from app.monitoring.recorder import Recorder
from app.providers.service_manager import ServiceManager
from tests.support import T0, Clock

from .helpers import settings

pytestmark = pytest.mark.unit

SATURATED = "ProviderSaturated"
LAG = "GatewayEventLoopLagHigh"


class InFlight:
    """Calls in flight and limits per provider, as the app's bulkheads would report them."""

    def __init__(self, **counts: tuple[int, int]) -> None:
        self.counts = dict(counts)

    def __call__(self) -> Mapping[str, tuple[int, int]]:
        return self.counts


def immediate(clock: Clock, instance: str = "gw-1") -> Monitoring:
    """Monitoring whose alerts fire at the first evaluation where they hold (``for: 0``)."""
    base = settings()
    return Monitoring(dataclasses.replace(base, alerts=dataclasses.replace(base.alerts, for_=0.0)), clock,
                      instance=instance)


def lags(recorder: Recorder, seconds: float, count: int) -> None:
    for _ in range(count):
        recorder.record_loop_lag(seconds)


# -- the recorder ----------------------------------------------------------------------------


def test_loop_lag_is_a_histogram_of_the_window_under_the_instance() -> None:
    clock = Clock()
    recorder = Recorder(bucket=10, horizon=600, clock=clock, instance="gw-1")
    assert recorder.instance == "gw-1"
    assert recorder.loop_lag(clock(), 300) == {} and recorder.loop_lag_p99(clock(), 300) is None
    clock.advance(5)
    lags(recorder, 0.004, 98)  # the bucket (0.0025, 0.005]
    lags(recorder, 0.3, 2)  # (0.25, 0.5]
    [(instance, buckets)] = recorder.loop_lag(clock(), 300).items()
    assert instance == "gw-1"
    assert [bound for bound, _ in buckets] == [*LOOP_LAG_BUCKETS, float("inf")]
    counts = dict(buckets)
    assert (counts[0.0025], counts[0.005], counts[0.25], counts[0.5], counts[float("inf")]) == (0, 98, 98, 100, 100)
    # rank 99 of 100 lies halfway through (0.25, 0.5]
    assert recorder.loop_lag_p99(clock(), 300) == pytest.approx(0.375)
    clock.advance(304)  # at bucket granularity, (T0 + 9, T0 + 309] still covers (T0, T0 + 10]
    assert recorder.loop_lag_p99(clock(), 300) == pytest.approx(0.375)
    clock.advance(1)  # (T0 + 10, T0 + 310] does not
    assert recorder.loop_lag(clock(), 300) == {} and recorder.loop_lag_p99(clock(), 300) is None


def test_loop_lag_on_a_bucket_bound_counts_in_that_bucket() -> None:
    clock = Clock()
    recorder = Recorder(clock=clock, instance="gw-1")
    clock.advance(1)
    lags(recorder, 0.1, 100)  # le="0.1" includes 0.1, as Prometheus's histogram does
    assert dict(recorder.loop_lag(clock(), 300)["gw-1"])[0.1] == 100
    assert recorder.loop_lag_p99(clock(), 300) == pytest.approx(0.0995)


def test_the_instance_defaults_to_the_host_name() -> None:
    assert Recorder().instance == socket.gethostname()
    assert Monitoring(settings(), Clock(), instance="gw-7").recorder.instance == "gw-7"


def test_saturation_reads_the_app_now() -> None:
    recorder = Recorder(clock=Clock())
    assert recorder.saturation(T0) == {}
    reader = InFlight(sarvam=(8, 10), deepgram=(0, 100))
    recorder.saturation_reader = reader
    assert recorder.saturation(T0) == {"sarvam": 0.8, "deepgram": 0.0}
    reader.counts = {"sarvam": (3, 0), "openai": (0, 0)}  # a limit of 0: x / 0 is +Inf, 0 / 0 no value
    assert recorder.saturation(T0) == {"sarvam": float("inf")}


def test_overloaded_refusals_are_counted_apart_from_rate_limited_ones() -> None:
    clock = Clock()
    recorder = Recorder(clock=clock)
    spec = CallSpec("sarvam", "tts")
    clock.advance(1)
    for reason in (ErrorType.OVERLOADED, ErrorType.OVERLOADED, ErrorType.RATE_LIMITED):
        recorder.on_rejection(spec, reason)
    stats = recorder.window_stats(clock(), 300)[("sarvam", "tts")]
    assert (stats.overloaded, stats.rate_limited) == (2.0, 1.0)
    assert recorder.window_stats(clock.advance(309), 300)[("sarvam", "tts")].overloaded == 0.0  # (T0 + 10, ...]


# -- the evaluator on the recorder ----------------------------------------------------------------


def test_saturated_at_the_ratio_of_the_limit_in_flight_and_not_below() -> None:
    clock = Clock()
    m = immediate(clock)
    reader = InFlight(sarvam=(79, 100))
    m.observe_saturation(reader)
    assert [a for a in m.evaluate() if a.name == SATURATED] == []
    reader.counts = {"sarvam": (80, 100), "deepgram": (1, 100)}
    [alert] = [a for a in m.evaluate(clock.advance(15)) if a.name == SATURATED]
    assert (alert.state, alert.severity, alert.value, alert.threshold) == ("firing", "warning", 0.8, 0.8)
    assert (alert.provider, alert.operation, alert.subject) == ("sarvam", None, "sarvam")
    assert alert.labels == {"alertname": SATURATED, "provider": "sarvam", "severity": "warning"}
    assert "value 0.8:" in alert.annotations["description"]
    assert alert.annotations["runbook_url"] == "alerts/RUNBOOK.md#providersaturated"
    reader.counts = {"sarvam": (10, 100)}
    assert [a for a in m.evaluate(clock.advance(15)) if a.name == SATURATED] == []
    assert [(a.name, a.state) for a in m.resolved_alerts()] == [(SATURATED, "resolved")]


def test_overloaded_refusals_fire_it_summed_over_operations_and_win_over_the_share() -> None:
    clock = Clock()
    m = immediate(clock)
    reader = InFlight(openai=(4, 4))
    m.observe_saturation(reader)
    clock.advance(1)
    m.recorder.on_rejection(CallSpec("openai", "chat"), ErrorType.OVERLOADED)
    m.recorder.on_rejection(CallSpec("openai", "embeddings"), ErrorType.OVERLOADED)
    m.recorder.on_rejection(CallSpec("sarvam", "tts"), ErrorType.RATE_LIMITED)  # another alert
    [alert] = [a for a in m.evaluate() if a.name == SATURATED]
    assert (alert.provider, alert.value) == ("openai", 2.0)  # the refusals, not the share of 1.0
    reader.counts = {}
    [alert] = [a for a in m.evaluate(clock.advance(15)) if a.name == SATURATED]
    assert alert.value == 2.0
    clock.advance(309)  # the refusals leave the window; nothing in flight: no alert
    assert [a for a in m.evaluate() if a.name == SATURATED] == []


def test_event_loop_lag_fires_per_instance_above_the_threshold_only() -> None:
    clock = Clock()
    m = immediate(clock, instance="gw-1")
    clock.advance(1)
    lags(m.recorder, 0.1, 100)  # p99 0.0995 s: not above 0.1 s
    assert [a for a in m.evaluate() if a.name == LAG] == []
    lags(m.recorder, 0.2, 100)  # half of them in (0.1, 0.25]: p99 0.247 s
    [alert] = [a for a in m.evaluate(clock.advance(15)) if a.name == LAG]
    assert alert.state == "firing" and alert.value == pytest.approx(0.247) and alert.threshold == 0.1
    assert (alert.provider, alert.operation, alert.subject) == (None, None, "gw-1 event loop")
    assert alert.labels == {"alertname": LAG, "instance": "gw-1", "severity": "warning"}
    assert alert.annotations["description"].startswith("gw-1: p99 event-loop lag is 247ms over the last 5m")
    assert m.recorder.loop_lag_p99(clock(), 300) == pytest.approx(alert.value)
    clock.advance(309)  # nothing measured in the window: absent, resolved
    assert [a for a in m.evaluate() if a.name == LAG] == []


def test_a_saturated_provider_is_degraded_with_the_reason() -> None:
    clock = Clock()
    m = immediate(clock)
    m.record_request("sarvam.tts", True, 100.0)
    m.record_request("deepgram.stt", True, 100.0)
    m.observe_saturation(InFlight(sarvam=(10, 10)))
    m.evaluate()
    health = m.get_health_status()
    assert health.providers["sarvam"].status == "degraded"
    assert health.providers["sarvam"].reasons == [f"alert firing: {SATURATED}/warning"]
    assert health.providers["sarvam"].operations["tts"].status == "healthy"
    assert health.providers["deepgram"].status == "healthy" and health.firing_alerts == 1


# -- over HTTP -------------------------------------------------------------------------------------


async def test_health_alerts_and_the_status_page_list_both_with_their_labels() -> None:
    env = {"HEALTH_CHECK_INTERVAL": "3600", "ALERT_EVAL_INTERVAL": "3600", "ALERT_FOR": "0",
           "ALERT_EVENT_LOOP_LAG_WARNING": "100ms"}  # the lags this test records are 1.5 s
    app = create_app(load_settings(env))
    manager: ServiceManager = app.state.service_manager
    async with AsyncTestClient(app) as client:
        monitoring = manager.monitoring
        monitoring.observe_saturation(InFlight(sarvam=(9, 10)))
        lags(monitoring.recorder, 1.5, 500)
        monitoring.evaluate()
        body = (await client.get("/health/alerts", params={"severity": "warning"})).json()
        found = {a["name"]: a for a in body["alerts"]}
        saturated, lag = found[SATURATED], found[LAG]
        assert (saturated["provider"], saturated["operation"], saturated["value"]) == ("sarvam", None, 0.9)
        assert saturated["labels"] == {"alertname": SATURATED, "provider": "sarvam", "severity": "warning"}
        instance = monitoring.recorder.instance
        assert (lag["provider"], lag["operation"], lag["threshold"]) == (None, None, 0.1)
        assert lag["labels"] == {"alertname": LAG, "instance": instance, "severity": "warning"}
        health = (await client.get("/health/")).json()
        assert health["firing_alerts"] == 2
        page = await client.get("/status")
        assert page.status_code == 200
        assert f'data-alert="{SATURATED}"' in page.text and f'data-alert="{LAG}"' in page.text
        assert f"{instance} event loop" in page.text and "p99 loop lag 2.48 s" in page.text
        assert "any overloaded refusal, or 80% of the limit in flight" in page.text
