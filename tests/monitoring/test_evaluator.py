"""Each alert of DESIGN.md goes pending, fires after ``for`` and resolves, at the right thresholds."""

from __future__ import annotations

import dataclasses

import pytest

from app.calls import CallContext, CallSpec, GatewayError, ServiceKey
from app.config import AlertSettings
from app.monitoring import Monitoring
from app.providers.base import Pipeline
from tests.support import T0, Clock

from .helpers import record, settings, threshold_alerts

pytestmark = pytest.mark.unit

TRANSLATE = CallSpec("sarvam", "translate")


def immediate(env: dict[str, str] | None = None, clock: Clock | None = None) -> tuple[Monitoring, Clock]:
    """Monitoring whose alerts fire at the first evaluation where they hold (``for: 0``)."""
    base = settings(env)
    clock = clock or Clock()
    return Monitoring(dataclasses.replace(base, alerts=dataclasses.replace(base.alerts, for_=0.0)), clock), clock


def active(m: Monitoring, now: float | None = None) -> set[tuple[str, str, str]]:
    return {(a.name, a.severity, a.state) for a in threshold_alerts(m.evaluate(now))}


def test_pending_then_firing_after_for_then_resolved() -> None:
    clock = Clock()
    m = Monitoring(settings(), clock)
    record(m, "sarvam.translate", ok=9, failed=1)
    assert active(m) == {("ProviderSuccessRateLow", "warning", "pending")}
    [alert] = threshold_alerts(m.get_alerts())
    assert alert.since.timestamp() == T0 and alert.value == pytest.approx(0.9) and alert.threshold == 0.95
    assert (alert.provider, alert.operation) == ("sarvam", "translate")
    assert alert.labels == {"alertname": "ProviderSuccessRateLow", "provider": "sarvam", "operation": "translate",
                            "severity": "warning"}
    assert alert.annotations["description"].startswith("sarvam.translate: 90% of attempted calls")
    for _ in range(3):
        clock.advance(15)
        assert active(m) == {("ProviderSuccessRateLow", "warning", "pending")}
    clock.advance(15)  # 60 s after it started holding
    assert active(m) == {("ProviderSuccessRateLow", "warning", "firing")}
    [firing] = threshold_alerts(m.get_alerts(alert_type="warning"))
    assert firing.since.timestamp() == T0 and firing.fired_at is not None and firing.fired_at.timestamp() == T0 + 60
    record(m, "sarvam.translate", ok=1000)
    clock.advance(15)
    assert active(m) == set()
    [resolved] = threshold_alerts(m.resolved_alerts())
    assert resolved.state == "resolved" and resolved.resolved_at is not None
    assert resolved.resolved_at.timestamp() == T0 + 75


def test_a_pending_alert_that_stops_holding_is_dropped_not_resolved() -> None:
    clock = Clock()
    m = Monitoring(settings(), clock)
    record(m, "sarvam.translate", ok=9, failed=1)
    assert active(m) == {("ProviderSuccessRateLow", "warning", "pending")}
    record(m, "sarvam.translate", ok=100)
    assert active(m, clock.advance(15)) == set()
    assert threshold_alerts(m.resolved_alerts()) == []


@pytest.mark.parametrize(("ok", "failed", "expected"), [
    (949, 51, {"warning"}),
    (950, 50, set()),
    (799, 201, {"warning", "critical"}),
    (800, 200, {"warning"}),
])
def test_success_rate_thresholds(ok: int, failed: int, expected: set[str]) -> None:
    m, _ = immediate()
    record(m, "sarvam.tts", ok=ok, failed=failed)
    assert active(m) == {("ProviderSuccessRateLow", sev, "firing") for sev in expected}


def test_rate_alerts_need_the_minimum_number_of_attempted_calls() -> None:
    m, clock = immediate()
    record(m, "deepgram.stt", ok=0, failed=9, latency_ms=20_000)
    assert active(m) == set()
    record(m, "deepgram.stt", ok=0, failed=1, latency_ms=20_000)
    assert active(m, clock.advance(15)) == {
        ("ProviderSuccessRateLow", "warning", "firing"), ("ProviderSuccessRateLow", "critical", "firing"),
        ("ProviderLatencyHigh", "warning", "firing"), ("ProviderLatencyHigh", "critical", "firing")}


@pytest.mark.parametrize(("calls", "expected", "p95"), [
    ([(96, 4_900), (4, 20_000)], set(), 2.5 + 2.5 * 95 / 96),  # just under 5 s
    ([(95, 4_900), (5, 20_000)], set(), 5.0),  # on the bound: not above it
    ([(94, 4_900), (6, 6_000)], {"warning"}, 5 + 2.5 / 6),  # just over 5 s
    ([(96, 9_000), (4, 20_000)], {"warning"}, 7.5 + 2.5 * 95 / 96),  # just under 10 s
    ([(94, 9_000), (6, 12_000)], {"warning", "critical"}, 10 + 5 / 6),  # just over 10 s: listed together
])
def test_latency_p95_thresholds(calls: list[tuple[int, float]], expected: set[str], p95: float) -> None:
    m, _ = immediate()
    for count, latency_ms in calls:
        record(m, "openai.chat", ok=count, latency_ms=latency_ms)
    assert active(m) == {("ProviderLatencyHigh", sev, "firing") for sev in expected}
    status = m.get_health_status().providers["openai"].operations["chat"]
    assert status.latency_p95_ms == pytest.approx(p95 * 1000)
    for alert in threshold_alerts(m.get_alerts()):
        assert alert.value == pytest.approx(p95)


def test_warning_and_critical_are_listed_together_critical_first() -> None:
    m, _ = immediate()
    record(m, "sarvam.stt", ok=5, failed=5)
    alerts = threshold_alerts(m.evaluate())
    assert [(a.name, a.severity) for a in alerts] == [
        ("ProviderSuccessRateLow", "critical"), ("ProviderSuccessRateLow", "warning")]
    assert [a.severity for a in threshold_alerts(m.get_alerts(severity="critical"))] == ["critical"]
    with pytest.raises(ValueError):
        threshold_alerts(m.get_alerts(alert_type="info"))


async def fail(_: CallContext) -> object:
    raise ConnectionError("refused")


async def succeed(_: CallContext) -> object:
    return "ok"


async def test_circuit_open_now_or_opened_during_the_window() -> None:
    m, clock = immediate({"SARVAM_MAX_FAILURES": "2", "SARVAM_CIRCUIT_RESET_TIME": "0.05"})
    pipeline = Pipeline(m.settings, observers=[m.observer], breaker_clock=clock)
    for _ in range(2):
        with pytest.raises(GatewayError):
            await pipeline.call(TRANSLATE, fail)
    assert ("ProviderCircuitOpen", "critical", "firing") in active(m)
    assert next(a for a in threshold_alerts(m.get_alerts()) if a.name == "ProviderCircuitOpen").value == 2
    assert m.get_health_status().providers["sarvam"].status == "unhealthy"
    clock.advance(0.06)
    assert await pipeline.call(TRANSLATE, succeed) == "ok"  # the trial call closes the breaker
    assert pipeline.breakers[ServiceKey("sarvam", "translate")].state == "closed"
    clock.advance(60)
    [circuit] = [a for a in threshold_alerts(m.evaluate()) if a.name == "ProviderCircuitOpen"]
    assert circuit.state == "firing" and circuit.value == 1  # opened once during the window
    clock.advance(300)
    assert [a for a in threshold_alerts(m.evaluate()) if a.name == "ProviderCircuitOpen"] == []
    assert [a.name for a in m.resolved_alerts()] == ["ProviderCircuitOpen"]


async def test_rate_limited_fires_on_one_rejection_which_is_not_an_attempt() -> None:
    m, clock = immediate({"SARVAM_RATE_LIMIT": "2"})
    pipeline = Pipeline(m.settings, observers=[m.observer])
    for _ in range(2):
        await pipeline.call(TRANSLATE, succeed)
    with pytest.raises(GatewayError) as rejected:
        await pipeline.call(TRANSLATE, succeed)
    assert rejected.value.error_type == "rate_limited"
    [alert] = threshold_alerts(m.evaluate())
    assert (alert.name, alert.severity, alert.state, alert.value) == ("ProviderRateLimited", "warning", "firing", 1)
    assert alert.annotations["description"] == "sarvam.translate: 1 calls rejected by the rate limit over the last 5m."
    translate = m.get_health_status().providers["sarvam"].operations["translate"]
    assert (translate.requests, translate.rejections) == (2, {"rate_limited": 1})
    clock.advance(310)
    assert threshold_alerts(m.evaluate()) == []


async def test_health_checks_are_recorded_apart_from_requests() -> None:
    m, _ = immediate()
    pipeline = Pipeline(m.settings, observers=[m.observer])
    for _ in range(20):
        with pytest.raises(GatewayError):
            await pipeline.call(CallSpec("sarvam", "health"), fail, health_check=True)
    assert threshold_alerts(m.evaluate()) == []
    assert m.recorder.keys() == []
    checks = m.recorder.health_checks("sarvam")
    assert len(checks) == 20 and not checks[-1].ok and checks[-1].error_type == "connection"


def test_seed_api_records_per_service_and_evaluates_on_read() -> None:
    clock = Clock()
    m = Monitoring(settings({"ALERT_MIN_REQUESTS": "1"}), clock)
    m.record_request(service="sarvam", success=False, latency_ms=150.5, error_type="timeout")
    m.record_request(service="sarvam.tts", success=True, latency_ms=80.0)
    m.record_request(service="deepgram", success=True, latency_ms=80.0, operation="stt")
    assert m.recorder.keys() == [("deepgram", "stt"), ("sarvam", "tts"), ("sarvam", "unspecified")]
    critical = threshold_alerts(m.get_alerts(alert_type="critical"))
    assert [(a.operation, a.state) for a in critical] == [("unspecified", "pending")]
    health = m.get_health_status()
    # One failed call and nothing else burns the error budget 200x in every window: that one fires.
    assert health.pending_alerts == 2 and health.firing_alerts == 2
    assert health.providers["sarvam"].operations["unspecified"].reasons == [
        "alert firing: ProviderErrorBudgetBurn/critical", "alert firing: ProviderErrorBudgetBurn/warning"]
    assert health.providers["sarvam"].operations["unspecified"].errors == {"timeout": 1}


def test_alert_rules_follow_alert_settings() -> None:
    base = settings()
    alerts = AlertSettings(window=60, for_=30, eval_interval=10, min_requests=2, success_rate_warning=0.5,
                           success_rate_critical=0.2)
    clock = Clock()
    m = Monitoring(dataclasses.replace(base, alerts=alerts), clock)
    record(m, "rag.query", ok=1, failed=1)
    assert active(m) == set()
    record(m, "rag.query", ok=0, failed=1)
    assert active(m, clock.advance(10)) == {("ProviderSuccessRateLow", "warning", "pending")}
    assert active(m, clock.advance(30)) == {("ProviderSuccessRateLow", "warning", "firing")}
    assert active(m, clock.advance(60)) == set()  # the calls left the 60 s window
