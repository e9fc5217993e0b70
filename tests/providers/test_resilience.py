"""Breaker, rate limiter and upstream-failure mapping, through HTTP against the simulator."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from app.calls import ServiceKey
from tests.gateway import Gateway, running_gateway
from tests.support import Clock, free_port

PROBLEM = "application/problem+json"


def assert_problem(response: httpx.Response, status: int, error_type: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, object] = response.json()
    assert body["status"] == status and body["error_type"] == error_type
    assert body["title"] and body["detail"] and body["type"]
    return body


def on_a_clock(gw: Gateway) -> Clock:
    """Breakers made from now on (the first call of an operation makes its breaker) time their
    reset on a clock the test moves, so that the test need not sleep through it."""
    assert gw.manager.pipeline.breakers == {}
    clock = gw.manager.pipeline.breaker_clock = Clock(time.time())
    return clock


def test_breaker_opens_after_exactly_max_failures_and_rejects_with_retry_after() -> None:
    with running_gateway({"SARVAM_MAX_FAILURES": "3", "SARVAM_CIRCUIT_RESET_TIME": "30",
                          "FALLBACKS_ENABLED": "false"}) as gw:
        gw.fault("sarvam", operation="translate", error_rate=1.0, status_code=500)
        for _ in range(2):
            assert_problem(gw.translate(), 502, "upstream_5xx")
        assert gw.manager.pipeline.breakers[ServiceKey("sarvam", "translate")].state == "closed"
        assert_problem(gw.translate(), 502, "upstream_5xx")  # the third failure opens it
        assert gw.manager.pipeline.breakers[ServiceKey("sarvam", "translate")].state == "open"
        gw.clear_upstream_requests()
        rejected = gw.translate()
        assert_problem(rejected, 503, "circuit_open")
        assert 1 <= int(rejected.headers["retry-after"]) <= 30
        assert gw.upstream_requests("sarvam") == []  # rejected calls never reach the provider
        # Other operations of the same provider have breakers of their own.
        assert gw.manager.pipeline.breakers.get(ServiceKey("sarvam", "tts")) is None or \
            gw.manager.pipeline.breakers[ServiceKey("sarvam", "tts")].state == "closed"


def test_half_open_lets_one_trial_through_then_closes_or_reopens() -> None:
    with running_gateway({"SARVAM_MAX_FAILURES": "2", "SARVAM_CIRCUIT_RESET_TIME": "1",
                          "FALLBACKS_ENABLED": "false"}) as gw:
        clock = on_a_clock(gw)
        gw.fault("sarvam", operation="translate", error_rate=1.0, status_code=503)
        for _ in range(2):
            assert_problem(gw.translate(), 502, "upstream_5xx")
        assert_problem(gw.translate(), 503, "circuit_open")
        clock.advance(1.1)
        # The trial fails: open again at once.
        assert_problem(gw.translate(), 502, "upstream_5xx")
        assert_problem(gw.translate(), 503, "circuit_open")
        clock.advance(1.1)
        gw.clear_faults()
        assert gw.translate().status_code == 200  # the trial succeeds: closed
        assert gw.manager.pipeline.breakers[ServiceKey("sarvam", "translate")].state == "closed"
        assert gw.translate().status_code == 200


def test_half_open_admits_exactly_one_of_fifty_concurrent_callers() -> None:
    with running_gateway({"SARVAM_MAX_FAILURES": "1", "SARVAM_CIRCUIT_RESET_TIME": "1",
                          "FALLBACKS_ENABLED": "false", "SARVAM_RATE_LIMIT": "1000"}) as gw:
        clock = on_a_clock(gw)
        gw.fault("sarvam", operation="translate", error_rate=1.0, status_code=500)
        assert_problem(gw.translate(), 502, "upstream_5xx")
        clock.advance(1.1)
        # A slow but good trial: 2 s, so that all fifty callers arrive while it is in flight even on a
        # loaded machine (at 500 ms, half of them once came after it had closed the breaker).
        gw.fault("sarvam", operation="translate", latency_ms=2000)
        gw.clear_upstream_requests()
        with ThreadPoolExecutor(50) as pool:
            statuses = list(pool.map(lambda _: gw.translate().status_code, range(50)))
        assert statuses.count(200) == 1
        assert statuses.count(503) == 49
        assert len(gw.upstream_requests("sarvam")) == 1


def test_rate_limit_admits_exactly_the_limit_per_window_then_429() -> None:
    with running_gateway({"SARVAM_RATE_LIMIT": "5", "RATE_LIMIT_WINDOW": "2s", "FALLBACKS_ENABLED": "false"}) as gw:
        statuses = [gw.translate().status_code for _ in range(5)]
        assert statuses == [200] * 5
        limited = gw.translate()
        assert_problem(limited, 429, "rate_limited")
        assert 1 <= int(limited.headers["retry-after"]) <= 2
        assert len(gw.upstream_requests("sarvam")) == 5
        time.sleep(2.1)
        assert gw.translate().status_code == 200


@pytest.mark.parametrize(
    ("fault", "status", "error_type"),
    [
        ({"error_rate": 1.0, "status_code": 500}, 502, "upstream_5xx"),
        ({"error_rate": 1.0, "status_code": 503}, 502, "upstream_5xx"),
        ({"error_rate": 1.0, "status_code": 429, "retry_after": 7}, 429, "upstream_rate_limited"),
        ({"error_rate": 1.0, "status_code": 403}, 502, "auth"),
        ({"error_rate": 1.0, "status_code": 401}, 502, "auth"),
        ({"error_rate": 1.0, "status_code": 400}, 422, "upstream_4xx"),
        ({"hang": True}, 504, "timeout"),
        ({"latency_ms": 1500}, 504, "timeout"),
        ({"malformed": True}, 502, "upstream_malformed"),
    ],
)
def test_each_upstream_failure_maps_to_its_documented_status(
    fault: dict[str, object], status: int, error_type: str
) -> None:
    with running_gateway({"SARVAM_TIMEOUT": "0.5", "FALLBACKS_ENABLED": "false"}) as gw:
        gw.fault("sarvam", operation="translate", **fault)
        started = time.monotonic()
        response = gw.translate()
        assert time.monotonic() - started < 5
        body = assert_problem(response, status, error_type)
        assert body["provider"] == "sarvam"
        assert response.headers["x-provider"] == "sarvam"
        if status == 429:
            assert response.headers["retry-after"] == "7"


def test_provider_retry_after_is_honoured_before_calling_it_again() -> None:
    with running_gateway({"FALLBACKS_ENABLED": "false", "SARVAM_MAX_FAILURES": "100"}) as gw:
        clock = gw.manager.pipeline.clock = Clock(time.monotonic())  # the holds' clock
        gw.fault("sarvam", operation="translate", error_rate=1.0, status_code=429, retry_after=2)
        assert_problem(gw.translate(), 429, "upstream_rate_limited")
        gw.clear_faults()
        gw.clear_upstream_requests()
        held = gw.translate()
        assert_problem(held, 429, "upstream_rate_limited")
        assert gw.upstream_requests("sarvam") == []  # not called during the provider's Retry-After
        clock.advance(2.1)
        assert gw.translate().status_code == 200


def test_connection_refused_is_a_502_connection_error() -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    with running_gateway({"SARVAM_BASE_URL": dead, "FALLBACKS_ENABLED": "false"}) as gw:
        assert_problem(gw.translate(), 502, "connection")


def test_retries_pass_the_breaker_and_the_limiter_each_time() -> None:
    with running_gateway({"SARVAM_MAX_RETRIES": "2", "SARVAM_MAX_FAILURES": "10",
                          "FALLBACKS_ENABLED": "false"}) as gw:
        gw.fault("sarvam", operation="translate", error_rate=0.5, status_code=500)
        assert gw.translate().status_code == 200  # request 1 of the fault's count succeeds
        gw.clear_upstream_requests()
        assert gw.translate().status_code == 200  # request 2 fails, its retry (3) succeeds
        assert len(gw.upstream_requests("sarvam")) == 2
        assert gw.manager.pipeline.breakers[ServiceKey("sarvam", "translate")].fail_counter == 0
