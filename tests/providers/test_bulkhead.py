"""The bulkhead per provider (``P_MAX_CONCURRENCY``) through HTTP: overflow refused at once as
``overloaded``, fallbacks, isolation from a hanging provider, slots freed on every exit path, the
pool sized from the limit, health checks never refused, and what ``/metrics`` shows."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.config import load_settings
from app.providers.service_manager import ServiceManager
from tests.gateway import TEST_ENV, Gateway, running_gateway
from tests.support import wait_until, wait_until_async

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}]}


def tts_body(provider: str | None, language: str) -> dict[str, Any]:
    body: dict[str, Any] = {"text": "hello there, how are you today?", "language_code": language}
    if provider:
        body["provider"] = provider
    return body


def in_flight(gateway: Gateway, provider: str) -> int:
    concurrency = gateway.client.get(f"/health/services/{provider}").json()["concurrency"]
    return int(concurrency["in_flight"])


def samples(gateway: Gateway, name: str) -> dict[frozenset[tuple[str, str]], float]:
    text = gateway.client.get("/metrics").text
    return {frozenset(s.labels.items()): s.value
            for family in text_string_to_metric_families(text) for s in family.samples if s.name == name}


def sample(gateway: Gateway, name: str, **labels: str) -> float | None:
    found = [value for key, value in samples(gateway, name).items() if set(labels.items()) <= key]
    return sum(found) if found else None


@pytest.fixture
def gateway_env(request: pytest.FixtureRequest) -> Iterator[Gateway]:
    env: Mapping[str, str] = request.param
    with running_gateway(env) as gateway:
        yield gateway


async def hold(gateway: Gateway, count: int, path: str, body: dict[str, Any]) -> list[asyncio.Task[int]]:
    """``count`` calls that the simulator holds (a hang fault), as tasks answering their status."""
    client = httpx.AsyncClient(base_url=gateway.url, timeout=60,
                               limits=httpx.Limits(max_connections=count + 10))

    async def one() -> int:
        response = await client.post(path, json=body)
        return response.status_code

    tasks = [asyncio.create_task(one()) for _ in range(count)]

    async def close_when_done() -> None:
        await asyncio.gather(*tasks, return_exceptions=True)
        await client.aclose()

    asyncio.get_running_loop().create_task(close_when_done())
    return tasks


@pytest.mark.parametrize("gateway_env", [{"DEEPGRAM_MAX_CONCURRENCY": "3", "ALERT_FOR": "0",
                                          "ALERT_EVAL_INTERVAL": "0.2"}], indirect=True)
async def test_a_call_over_the_limit_is_refused_at_once_as_overloaded(gateway_env: Gateway) -> None:
    gateway = gateway_env
    gateway.fault("deepgram", operation="tts", hang=True)
    held = await hold(gateway, 3, "/v1/tts", tts_body("deepgram", "en-US"))
    await wait_until_async(lambda: in_flight(gateway, "deepgram") == 3, 20, "three calls in flight")

    refused = await asyncio.to_thread(gateway.client.post, "/v1/tts", json=tts_body("deepgram", "en-US"))
    assert refused.status_code == 503, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.headers["retry-after"] == "1"
    problem = refused.json()
    assert problem["error_type"] == "overloaded" and problem["status"] == 503
    assert "3 calls in flight" in problem["detail"]
    # Refused before any upstream I/O: the simulator saw only the three held calls.
    assert len([r for r in gateway.upstream_requests("deepgram") if r["operation"] == "tts"]) == 3

    assert sample(gateway, "provider_client_rejections_total", provider="deepgram", operation="tts",
                  reason="overloaded") == 1
    assert sample(gateway, "provider_client_active_requests", provider="deepgram", operation="tts") == 3
    assert sample(gateway, "provider_client_concurrency_limit", provider="deepgram") == 3
    assert sample(gateway, "provider_client_concurrency_limit", provider="openai") == 512

    def saturated() -> list[dict[str, Any]]:
        alerts = gateway.client.get("/health/alerts").json()["alerts"]
        return [a for a in alerts if a["name"] == "ProviderSaturated" and a["state"] == "firing"]

    await wait_until_async(lambda: bool(saturated()), 20, "ProviderSaturated firing in-app")
    [alert] = saturated()
    assert alert["labels"] == {"alertname": "ProviderSaturated", "provider": "deepgram", "severity": "warning"}
    assert alert["value"] == 1  # one overloaded refusal in the window (in flight is at 100% too)

    gateway.clear_faults()  # the held streams are answered now and free their slots at their end
    assert await asyncio.gather(*held) == [200, 200, 200]
    await wait_until_async(lambda: in_flight(gateway, "deepgram") == 0, 20, "slots freed")
    assert sample(gateway, "provider_client_active_requests", provider="deepgram", operation="tts") == 0


@pytest.mark.parametrize("gateway_env", [{"SARVAM_MAX_CONCURRENCY": "2"}], indirect=True)
async def test_overloaded_falls_back_like_our_own_rate_limit(gateway_env: Gateway) -> None:
    gateway = gateway_env
    gateway.fault("sarvam", operation="tts", hang=True)
    held = await hold(gateway, 2, "/v1/tts", tts_body("sarvam", "en-IN"))
    await wait_until_async(lambda: in_flight(gateway, "sarvam") == 2, 20, "sarvam full")

    served = await asyncio.to_thread(gateway.client.post, "/v1/tts", json=tts_body(None, "en-IN"))
    assert served.status_code == 200, served.text
    assert served.headers["x-provider"] == "deepgram" and served.headers["x-fallback"] == "true"
    assert served.content.startswith(b"RIFF")
    # The caller named the provider: no fallback, the refusal is the answer.
    named = await asyncio.to_thread(gateway.client.post, "/v1/tts", json=tts_body("sarvam", "en-IN"))
    assert named.status_code == 503 and named.json()["error_type"] == "overloaded"
    gateway.clear_faults()
    await asyncio.gather(*held)


@pytest.mark.parametrize("gateway_env", [{"DEEPGRAM_MAX_CONCURRENCY": "10", "OPENAI_MAX_CONCURRENCY": "4"}],
                         indirect=True)
async def test_a_hanging_provider_cannot_starve_another(gateway_env: Gateway) -> None:
    """Twice the limit of calls to a hanging Deepgram: half hang, half are refused at once, and
    chat calls keep being served from OpenAI's own pool, whose size (6) is below the hanging count."""
    gateway = gateway_env
    gateway.fault("deepgram", operation="tts", hang=True)
    held = await hold(gateway, 20, "/v1/tts", tts_body("deepgram", "en-US"))
    await wait_until_async(lambda: sum(t.done() for t in held) == 10, 20, "ten refusals")
    done = [t.result() for t in held if t.done()]
    assert done == [503] * 10
    assert in_flight(gateway, "deepgram") == 10

    for _ in range(10):
        chat = await asyncio.to_thread(gateway.client.post, "/v1/chat/completions", json=CHAT)
        assert chat.status_code == 200, chat.text
    assert in_flight(gateway, "deepgram") == 10  # still hanging, all along
    assert len([r for r in gateway.upstream_requests("deepgram") if r["operation"] == "tts"]) == 10
    gateway.clear_faults()
    await asyncio.gather(*held)


@pytest.mark.parametrize("gateway_env", [{"DEEPGRAM_MAX_CONCURRENCY": "530", "DEEPGRAM_RATE_LIMIT": "10000"}],
                         indirect=True)
async def test_raising_the_limit_raises_the_calls_in_flight(gateway_env: Gateway) -> None:
    """More than the old shared pool's 512 connections reach the provider at once: the pool is
    sized from the limit."""
    gateway = gateway_env
    gateway.fault("deepgram", operation="tts", hang=True)
    held = await hold(gateway, 530, "/v1/tts", tts_body("deepgram", "en-US"))
    await wait_until_async(lambda: in_flight(gateway, "deepgram") == 530, 60, "530 calls in flight")
    await wait_until_async(lambda: len(gateway.upstream_requests("deepgram")) == 530, 60,
                what="530 calls upstream")
    gateway.clear_faults()
    assert set(await asyncio.gather(*held)) == {200}
    await wait_until_async(lambda: in_flight(gateway, "deepgram") == 0, 20, "slots freed")


@pytest.mark.parametrize("gateway_env", [{"SARVAM_MAX_CONCURRENCY": "2", "HEALTH_CHECK_INTERVAL": "0.2"}],
                         indirect=True)
async def test_active_health_checks_take_no_slot_and_are_never_refused(gateway_env: Gateway) -> None:
    gateway = gateway_env
    gateway.fault("sarvam", operation="tts", hang=True)
    held = await hold(gateway, 2, "/v1/tts", tts_body("sarvam", "hi-IN"))
    await wait_until_async(lambda: in_flight(gateway, "sarvam") == 2, 20, "sarvam full")
    full_since = datetime.now(UTC)

    def checked_since_full() -> bool:
        check = gateway.client.get("/health/services/sarvam").json()["last_active_check"]
        return (check is not None and check["status"] == "up"
                and datetime.fromisoformat(check["checked_at"]) > full_since)

    await wait_until_async(checked_since_full, 20, "a health check while sarvam is full")
    assert in_flight(gateway, "sarvam") == 2
    assert sample(gateway, "provider_client_rejections_total", provider="sarvam", reason="overloaded") in (None, 0)
    gateway.clear_faults()
    await asyncio.gather(*held)


@pytest.mark.parametrize("gateway_env", [{"SARVAM_TIMEOUT": "0.3", "FALLBACKS_ENABLED": "false"}], indirect=True)
def test_slots_are_freed_after_timeouts_errors_and_streams_closed_early(gateway_env: Gateway) -> None:
    """Sarvam's short timeout for the failures; Deepgram's streams run within their default timeout."""
    gateway = gateway_env
    gateway.fault("sarvam", operation="translate", hang=True)
    assert gateway.translate().status_code == 504
    assert in_flight(gateway, "sarvam") == 0

    gateway.fault("sarvam", operation="translate", error_rate=1.0, status_code=500)
    assert gateway.translate().json()["error_type"] == "upstream_5xx"
    assert in_flight(gateway, "sarvam") == 0

    gateway.fault("deepgram", operation="tts", chunk_delay_ms=2000)
    with gateway.client.stream("POST", "/v1/tts", json=tts_body("deepgram", "en-US")) as response:
        assert response.status_code == 200
        chunks = response.iter_raw()  # kept: a dropped iterator closes the response
        assert next(chunks).startswith(b"RIFF")
        assert in_flight(gateway, "deepgram") == 1  # held while the stream plays
    # The client left mid-stream: the relay is closed and the slot freed.
    wait_until(lambda: in_flight(gateway, "deepgram") == 0, 1.5, "the closed stream's slot freed")

    gateway.clear_faults()

    with gateway.client.stream("POST", "/v1/tts", json=tts_body("deepgram", "en-US")) as response:
        assert response.read().startswith(b"RIFF")
    wait_until(lambda: in_flight(gateway, "deepgram") == 0, 15, "the finished stream's slot freed")

    gateway.fault("deepgram", operation="tts", truncate=True)
    with (gateway.client.stream("POST", "/v1/tts", json=tts_body("deepgram", "en-US")) as response,
          pytest.raises(httpx.HTTPError)):
        response.read()
    wait_until(lambda: in_flight(gateway, "deepgram") == 0, 15, "the broken stream's slot freed")


async def test_cancelled_callers_and_unread_streams_free_their_slots() -> None:
    """Through the seed's Python API (a service manager on this test's event loop, its providers
    simulated by a running gateway): a caller's task cancelled mid-call, and a stream closed
    before its first chunk was read."""
    with running_gateway() as gateway:
        manager = ServiceManager(load_settings(TEST_ENV).with_simulator(gateway.url + "/_sim"))
        bulkhead = manager.pipeline.bulkheads["sarvam"]
        try:
            gateway.fault("sarvam", operation="translate", hang=True)
            call = asyncio.create_task(manager.services.sarvam_translate.translate("hello", "en-IN", "hi-IN"))
            await wait_until_async(lambda: bulkhead.in_flight == 1, 20, "the call in flight")
            call.cancel()
            with pytest.raises(asyncio.CancelledError):
                await call
            assert bulkhead.in_flight == 0

            gateway.clear_faults()
            stream = await manager.services.sarvam_tts.stream("hello", "hi-IN")
            assert bulkhead.in_flight == 1
            await stream.aclose()
            assert bulkhead.in_flight == 0
        finally:
            await manager.stop()


def test_call_wait_and_event_loop_lag_are_exported() -> None:
    with running_gateway({"ALERT_EVENT_LOOP_LAG_WARNING": "100ms"}) as gateway:  # the threshold it reads back
        assert gateway.client.post("/v1/chat/completions", json=CHAT).status_code == 200
        wait_until(lambda: (sample(gateway, "gateway_event_loop_lag_seconds_count") or 0) > 2,
                   15, "loop lag samples")
        count = sample(gateway, "gateway_call_wait_seconds_count", provider="openai", operation="chat")
        assert count == 1
        total = sample(gateway, "gateway_call_wait_seconds_sum", provider="openai", operation="chat")
        assert total is not None and 0 <= total < 1
        lag = gateway.client.get("/health/services/openai").json()["event_loop_lag"]
        assert lag["p99_ms"] is not None and lag["p99_ms"] >= 0 and lag["threshold_ms"] == 100
        assert "Event-loop lag (p99" in gateway.client.get("/status").text
