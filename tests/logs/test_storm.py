"""Storm control: a refusal storm is one line and summaries; failed calls are capped per interval."""

from __future__ import annotations

import time

import pytest

from app.logs.storm import FAILED_CALLS_PER_INTERVAL, StormControl

from .capture import logged_gateway

INTERVAL = 0.2


def test_a_refusal_storm_is_one_line_then_a_summary_written_within_one_interval_after_it() -> None:
    env = {"LOG_SUMMARY_INTERVAL": f"{INTERVAL}s", "SARVAM_MAX_FAILURES": "1", "FALLBACKS_ENABLED": "false",
           "SARVAM_RATE_LIMIT": "1000"}
    with logged_gateway(env) as (gw, lines):
        gw.fault("sarvam", operation="translate", error_rate=1.0, status_code=500)
        assert gw.translate().status_code == 502
        statuses = [gw.translate().status_code for _ in range(40)]
        ended = time.monotonic()

        def counted() -> int:
            return sum(s["count"] for s in lines.events("log.summary", event="provider.rejected"))

        lines.wait(lambda: counted() == 39, timeout=INTERVAL * 10)
        waited = time.monotonic() - ended
        time.sleep(INTERVAL * 1.5)  # nothing more comes once the storm is over
        assert counted() == 39
    assert statuses == [503] * 40
    assert waited < INTERVAL + 0.3, f"the last summary came {waited:.2f}s after the storm"
    [refused] = lines.events("provider.rejected")
    assert refused["reason"] == "circuit_open"
    summaries = lines.events("log.summary", event="provider.rejected")
    for summary in summaries:
        assert (summary["provider"], summary["operation"], summary["reason"], summary["interval_s"]) == (
            "sarvam", "translate", "circuit_open", INTERVAL)
        assert summary["level"] == "warning" and "trace_id" not in summary
    stamps = sorted(s["timestamp"] for s in summaries)
    assert len(stamps) == len(set(stamps))  # at most one summary per interval


def test_a_quiet_interval_ends_the_storm_so_the_next_refusal_is_logged_again() -> None:
    env = {"LOG_SUMMARY_INTERVAL": f"{INTERVAL}s", "SARVAM_RATE_LIMIT": "1", "FALLBACKS_ENABLED": "false"}
    with logged_gateway(env) as (gw, lines):
        assert [gw.translate().status_code for _ in range(2)] == [200, 429]
        time.sleep(INTERVAL * 2.5)
        assert gw.translate().status_code == 429
    assert len(lines.events("provider.rejected", reason="rate_limited")) == 2
    assert not lines.events("log.summary")


def test_failed_calls_are_logged_one_by_one_up_to_the_cap_then_counted() -> None:
    env = {"LOG_SUMMARY_INTERVAL": "60s", "SARVAM_MAX_FAILURES": "100", "FALLBACKS_ENABLED": "false"}
    calls = FAILED_CALLS_PER_INTERVAL + 7
    with logged_gateway(env) as (gw, lines):
        gw.fault("sarvam", operation="translate", error_rate=1.0, status_code=500)
        traces = [gw.translate().json()["trace_id"] for _ in range(calls)]
        gw.fault("sarvam", operation="translate", error_rate=1.0, status_code=401)
        assert gw.translate().status_code == 502
        assert not lines.events("log.summary")  # the interval has not ended yet
    failed = lines.events("provider.call.failed")
    assert [f["trace_id"] for f in failed] == traces[:FAILED_CALLS_PER_INTERVAL]
    # Stopping writes what was still counted, per error type.
    summaries = {s["reason"]: s["count"] for s in lines.events("log.summary", event="provider.call.failed")}
    assert summaries == {"upstream_5xx": 7, "auth": 1}


@pytest.mark.unit
def test_a_flush_right_after_the_first_occurrence_does_not_end_the_storm() -> None:
    storm = StormControl(interval=1.0)
    key = ("provider.rejected", "sarvam", "translate", "circuit_open")
    assert storm.first(key)
    storm.flush()  # the interval ends a moment after the storm began
    assert not storm.first(key)  # the second occurrence is folded, not written again
    storm.flush()  # it was counted: still storming
    storm.flush()  # a whole interval without it: the storm is over
    assert storm.first(key)
