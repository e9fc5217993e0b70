"""Trends: points over the window, and directions that follow an injected incident."""

from __future__ import annotations

import pytest

from app.calls import CallSpec
from app.monitoring import Monitoring
from app.monitoring.trends import TrendError, direction
from tests.support import Clock

from .helpers import settings

pytestmark = pytest.mark.unit

TRANSLATE = CallSpec("sarvam", "translate")
MINUTE = 60.0


def traffic(m: Monitoring, clock: Clock, minutes: int, *, failing: bool, breaker_flaps: bool = False) -> None:
    """Every 10 s, ten translate and ten TTS calls; while ``failing``, half the translations fail
    slowly, and with ``breaker_flaps`` the translate breaker rejects calls for 150 s of every 5 minutes."""
    for _ in range(minutes * 6):
        clock.advance(10)
        if breaker_flaps and clock.now % 300 == 10:
            m.observer.on_breaker_change(TRANSLATE, "closed", "open")
        if breaker_flaps and clock.now % 300 == 160:
            m.observer.on_breaker_change(TRANSLATE, "open", "half-open")
            m.observer.on_breaker_change(TRANSLATE, "half-open", "closed")
        for i in range(10):
            bad = failing and i % 2 == 0
            m.record_request("sarvam.translate", not bad, 3_000 if failing else 100, "timeout" if bad else None)
            m.record_request("sarvam.tts", True, 200)


def test_trends_degrade_during_an_incident_and_improve_after_it() -> None:
    clock = Clock()
    m = Monitoring(settings({"MONITORING_HORIZON": "3h", "SARVAM_CIRCUIT_RESET_TIME": "150"}), clock)
    traffic(m, clock, 60, failing=False)
    traffic(m, clock, 30, failing=True, breaker_flaps=True)
    during = m.trends("sarvam.translate", "1h", "5m")
    assert (during.service, during.window, during.step) == ("sarvam.translate", "1h", "5m")
    assert len(during.points) == 12
    assert during.points[-1].timestamp.timestamp() == clock.now
    assert during.points[1].timestamp.timestamp() - during.points[0].timestamp.timestamp() == 300
    before, incident = during.points[0], during.points[-1]
    assert (before.requests, before.success_rate, before.availability) == (300, 1.0, 1.0)
    assert before.latency_p50_ms == pytest.approx(75) and before.latency_avg_ms == pytest.approx(100)
    assert (incident.requests, incident.success_rate, incident.availability) == (300, 0.5, 0.5)
    assert incident.latency_p95_ms is not None and 2_500 < incident.latency_p95_ms <= 5_000
    assert (during.direction.success_rate, during.direction.latency_p95, during.direction.availability) == (
        "degrading", "degrading", "degrading")
    healthy = m.trends("sarvam.tts", "1h", "5m").direction
    assert (healthy.success_rate, healthy.latency_p95, healthy.availability) == ("stable", "stable", "stable")
    assert m.trends("sarvam", "1h", "5m").direction.success_rate == "degrading"

    traffic(m, clock, 30, failing=False)
    after = m.trends("sarvam.translate", "1h", "5m")
    assert (after.direction.success_rate, after.direction.latency_p95, after.direction.availability) == (
        "improving", "improving", "improving")
    assert m.trends("sarvam", "1h", "5m").points[-1].success_rate == 1.0


def test_points_without_calls_are_null_and_directions_need_three_points() -> None:
    clock = Clock()
    m = Monitoring(settings(), clock)
    m.record_request("deepgram.stt", True, 50)
    clock.advance(10)
    trends = m.trends("deepgram", "30m", "10m")
    assert [p.requests for p in trends.points] == [0, 0, 1]
    assert trends.points[0].success_rate is None and trends.points[0].latency_p95_ms is None
    assert trends.points[0].availability is None  # before the recorder started
    assert trends.points[-1].availability == 1.0
    assert trends.direction.success_rate == "insufficient_data"


def test_direction_significance_rule() -> None:
    times = [0.0, 300.0, 600.0, 900.0]
    assert direction(times, [0.99, 0.985, 0.99, 0.985], higher_is_better=True) == "stable"  # < 1 point
    assert direction(times, [1.0, 0.98, 0.97, 0.95], higher_is_better=True) == "degrading"
    assert direction(times, [0.9, 1.0, 0.9, 1.0], higher_is_better=True) == "stable"  # noise: r^2 < 0.5
    assert direction(times, [100.0, 105.0, 111.0, 116.0], higher_is_better=False) == "degrading"  # > 10% of mean
    assert direction(times, [100.0, 102.0, 104.0, 106.0], higher_is_better=False) == "stable"
    assert direction(times, [None, 1.0, None, 0.5], higher_is_better=True) == "insufficient_data"


def test_bad_windows_steps_and_services_are_refused() -> None:
    m = Monitoring(settings(), Clock())
    m.record_request("sarvam.tts", True, 50)
    for window, step in (("1h", "5s"), ("1h", "15s"), ("2h", "5m"), ("5m", "10m"), ("soon", "5m"), ("1h", "-5m")):
        with pytest.raises(TrendError):
            m.trends("sarvam", window, step)
    too_fine = Monitoring(settings({"MONITORING_HORIZON": "1d", "MONITORING_BUCKET": "1s"}), Clock())
    too_fine.record_request("sarvam.tts", True, 50)
    with pytest.raises(TrendError, match="1000 points"):
        too_fine.trends("sarvam", "1d", "1m")
    with pytest.raises(KeyError):
        m.trends("nobody")
    with pytest.raises(KeyError):
        m.trends("sarvam.stt")
