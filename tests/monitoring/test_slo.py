"""Error budgets in-app: the coarse ring holds the long windows, the evaluator raises the same
budget-burn alerts as the rules, and ``/health/slo`` and the status page show the budget."""

from __future__ import annotations

import time
from typing import Any

import pytest

from app.monitoring import Monitoring
from tests.support import Clock, wait_until

from ..gateway import running_gateway
from .helpers import BUDGET_BURN, record, settings

ALERT_MIN_REQUESTS = 10

HOUR = 3600.0


def budget_alerts(m: Monitoring, now: float | None = None) -> set[tuple[str, str, str]]:
    return {(a.name, a.severity, a.state) for a in m.evaluate(now) if a.name in BUDGET_BURN}


@pytest.mark.unit
def test_the_coarse_ring_holds_what_the_fine_one_dropped() -> None:
    m = Monitoring(settings(), Clock())
    record(m, "sarvam.translate", ok=98, failed=2)  # 2% failing: 4x the 0.5% budget
    m.clock.advance(90 * 60)  # type: ignore[attr-defined]
    [op] = m.slo_report([("sarvam", "translate")]).operations
    burn = op.availability.burn_rates
    assert burn["5m"] is None and burn["1h"] is None, "the fine ring: no calls in those windows"
    assert burn["2h"] == burn["6h"] == burn["1d"] == burn["3d"] == pytest.approx(4.0)
    assert op.availability.sli == pytest.approx(0.98) and op.availability.objective == 0.995
    assert op.availability.budget_remaining == pytest.approx(-3.0)
    assert op.latency.burn_rates["3d"] == 0.0 and op.latency.budget_remaining == 1.0
    assert op.latency.latency_threshold == 5.0
    m.clock.advance(3 * 24 * HOUR)  # type: ignore[attr-defined]
    [op] = m.slo_report([("sarvam", "translate")]).operations
    assert op.availability.burn_rates["3d"] is None and op.availability.budget_remaining is None


@pytest.mark.unit
def test_report_says_the_budget_is_over_the_history_held() -> None:
    report = Monitoring(settings(), Clock()).slo_report([])
    assert (report.period, report.budget_over, report.budget_window, report.time_scale) == ("30d", "history", "3d", 1)
    assert report.windows == ["5m", "30m", "1h", "2h", "6h", "1d", "3d"]
    scaled = Monitoring(settings({"SLO_TIME_SCALE": "60", "SLO_PERIOD": "2d"}), Clock()).slo_report([])
    assert (scaled.period, scaled.budget_over, scaled.budget_window) == ("48m", "period", "48m")
    assert scaled.windows == ["5s", "30s", "1m", "2m", "6m", "24m", "72m"]


@pytest.mark.unit
def test_a_short_spike_pages_only_while_the_short_window_agrees() -> None:
    clock = Clock()
    m = Monitoring(settings(), clock)
    for _ in range(12):  # an hour of clean traffic, 100 calls every 5 minutes
        record(m, "sarvam.translate", ok=100)
        clock.advance(300)
    record(m, "sarvam.translate", ok=100, failed=100)  # half of one 5-minute slot's calls fail
    # The hour (T0, T0 + 1h] holds 11 clean slots and the spike: 100 / 1300 failed, 15.4x; a day
    # and 2 hours too (a ticket beside the page, which Alertmanager's inhibition hides).
    assert budget_alerts(m) == {("ProviderErrorBudgetBurn", "critical", "firing"),
                                ("ProviderErrorBudgetBurn", "warning", "firing")}
    [alert] = [a for a in m.get_alerts("critical") if a.name == "ProviderErrorBudgetBurn"]
    assert alert.value == pytest.approx(100 / 1300 / 0.005)
    left = 1 - 100 / 1400 / 0.005  # over the history held: every call so far
    assert alert.annotations["budget_left"] == f"{left * 100:.4g}% of the 30d availability error budget left"
    clock.advance(300)
    record(m, "sarvam.translate", ok=100)
    # The 5m window is clean, but the spike also burns 6h and 30m above 6x: still a page.
    assert ("ProviderErrorBudgetBurn", "critical", "firing") in budget_alerts(m)
    for _ in range(6):
        clock.advance(300)
        record(m, "sarvam.translate", ok=100)
    burn = m.slo_report([("sarvam", "translate")]).operations[0].availability.burn_rates
    assert burn["1h"] > 14.4 and burn["6h"] > 6, "the long windows still burn"  # type: ignore[operator]
    assert burn["5m"] == 0 and burn["30m"] < 6  # type: ignore[operator]
    assert budget_alerts(m) == {("ProviderErrorBudgetBurn", "warning", "firing")}, \
        "no short window agrees any more: the page resolves, the ticket stays"


@pytest.mark.unit
def test_a_slow_leak_opens_a_ticket_not_a_page() -> None:
    clock = Clock()
    m = Monitoring(settings(), clock)
    for _ in range(36):  # three hours of 2% failing (4x), read from the coarse ring past the first hour
        record(m, "sarvam.tts", ok=98, failed=2)
        clock.advance(300)
    record(m, "sarvam.tts", ok=98, failed=2)
    assert budget_alerts(m) == {("ProviderErrorBudgetBurn", "warning", "firing")}
    [alert] = [a for a in m.get_alerts() if a.name == "ProviderErrorBudgetBurn"]
    assert alert.value == pytest.approx(4.0) and alert.severity == "warning"


@pytest.mark.unit
def test_slow_calls_burn_the_latency_budget_at_the_providers_threshold() -> None:
    clock = Clock()
    m = Monitoring(settings({"DEEPGRAM_SLO_LATENCY_THRESHOLD": "10", "DEEPGRAM_SLO_LATENCY": "0.9"}), clock)
    record(m, "deepgram.stt", ok=80, latency_ms=7_000)  # slow for 5 s, fast for deepgram's 10 s
    record(m, "deepgram.stt", ok=20, latency_ms=12_000)
    record(m, "sarvam.stt", ok=80, latency_ms=100)
    record(m, "sarvam.stt", ok=20, latency_ms=7_000)
    report = {o.provider: o.latency for o in m.slo_report([("deepgram", "stt"), ("sarvam", "stt")]).operations}
    assert report["deepgram"].latency_threshold == 10.0 and report["deepgram"].objective == 0.9
    assert report["deepgram"].burn_rates["5m"] == pytest.approx(0.2 / 0.1)
    assert report["sarvam"].burn_rates["5m"] == pytest.approx(0.2 / 0.01)
    alerts = {(a.name, a.provider, a.severity) for a in m.evaluate() if a.name in BUDGET_BURN}
    assert ("ProviderLatencyBudgetBurn", "sarvam", "critical") in alerts
    assert ("ProviderLatencyBudgetBurn", "deepgram", "critical") not in alerts  # 2x: a ticket at most


@pytest.mark.stack
def test_health_slo_alerts_and_status_page_over_http() -> None:
    env = {"ALERT_EVAL_INTERVAL": "100ms", "ALERT_MIN_REQUESTS": str(ALERT_MIN_REQUESTS), "SARVAM_MAX_FAILURES": "50",
           "FALLBACKS_ENABLED": "false"}
    with running_gateway(env) as gateway:
        gateway.fault("sarvam", operation="translate", error_rate=1.0, status_code=500)
        for _ in range(ALERT_MIN_REQUESTS - 1):
            gateway.translate()
        body = gateway.client.get("/health/slo").json()
        assert (body["period"], body["budget_over"], body["budget_window"]) == ("30d", "history", "3d")
        assert body["view"] == "local"
        [op] = [o for o in body["operations"] if (o["provider"], o["operation"]) == ("sarvam", "translate")]
        assert op["availability"]["sli"] == 0.0 and op["availability"]["objective"] == 0.995
        assert op["availability"]["burn_rates"]["5m"] == pytest.approx(1 / 0.005)
        assert op["availability"]["budget_remaining"] == pytest.approx(1 - 1 / 0.005)
        idle = [o for o in body["operations"] if o["provider"] == "rag"]
        assert idle and all(o["availability"]["sli"] is None for o in idle)

        def paged() -> list[dict[str, Any]]:
            alerts = gateway.client.get("/health/alerts", params={"severity": "critical"}).json()["alerts"]
            return [a for a in alerts if a["name"] == "ProviderErrorBudgetBurn" and a["state"] == "firing"]

        time.sleep(0.5)  # five evaluations: the burn is 200x, but over fewer calls than ALERT_MIN_REQUESTS
        assert not paged()
        gateway.translate()
        wait_until(paged, 5, "ProviderErrorBudgetBurn firing", interval=0.05)
        [alert] = paged()
        assert alert["annotations"]["budget_left"] == "-1.99e+04% of the 30d availability error budget left"
        page = gateway.client.get("/status")
        assert 'data-budget="sarvam.translate">availability -19900.0%, latency 100.0%' in page.text
        assert "Error budget left <small>(3d)</small>" in page.text
