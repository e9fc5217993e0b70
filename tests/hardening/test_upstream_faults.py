"""Every upstream fault, for every provider operation, ends in its documented status and
``error_type`` (or, once a stream has started, in a visibly incomplete body), never a 500 or a hang."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from app.calls import ServiceKey
from tests.audio import wav
from tests.gateway import Gateway, running_gateway
from tests.support import free_port

TIMEOUT = 1.0
ENV = {
    "FALLBACKS_ENABLED": "false",
    **{f"{p}_{name}": value for p in ("SARVAM", "DEEPGRAM", "OPENAI")
       for name, value in (("TIMEOUT", str(TIMEOUT)), ("MAX_FAILURES", "1000"), ("RATE_LIMIT", "100000"))},
}

Call = Callable[[httpx.Client], httpx.Response]
CALLS: dict[str, tuple[str, str, Call]] = {
    "sarvam.translate": ("sarvam", "translate", lambda c: c.post("/v1/translate", json={
        "input": "hello", "source_language_code": "en-IN", "target_language_code": "hi-IN"})),
    "sarvam.tts": ("sarvam", "tts", lambda c: c.post("/v1/tts", json={
        "text": "hello there, how are you today", "language_code": "hi-IN", "provider": "sarvam"})),
    "sarvam.stt": ("sarvam", "stt", lambda c: c.post("/v1/stt", files={"file": ("a.wav", wav(0.5), "audio/wav")},
                                                     data={"language_code": "hi-IN", "provider": "sarvam"})),
    "deepgram.tts": ("deepgram", "tts", lambda c: c.post("/v1/tts", json={
        "text": "hello there, how are you today", "language_code": "en-US", "provider": "deepgram"})),
    "deepgram.stt": ("deepgram", "stt", lambda c: c.post("/v1/stt", files={"file": ("a.wav", wav(0.5), "audio/wav")},
                                                         data={"language_code": "en-US", "provider": "deepgram"})),
    "openai.chat": ("openai", "chat", lambda c: c.post("/v1/chat/completions", json={
        "messages": [{"role": "user", "content": "hi"}]})),
    "openai.chat.stream": ("openai", "chat", lambda c: c.post("/v1/chat/completions", json={
        "messages": [{"role": "user", "content": "hi"}], "stream": True})),
    "openai.embeddings": ("openai", "embeddings", lambda c: c.post("/v1/embeddings", json={
        "model": "text-embedding-3-small", "input": "x"})),
}
STREAMS = ("sarvam.tts", "deepgram.tts", "openai.chat.stream")


@pytest.fixture(scope="module")
def shared_gateway() -> Iterator[Gateway]:
    with running_gateway(ENV) as gw:
        yield gw


@pytest.fixture
def gw(shared_gateway: Gateway) -> Iterator[Gateway]:
    shared_gateway.clear_faults()
    yield shared_gateway
    shared_gateway.clear_faults()


def assert_problem(response: httpx.Response, status: int, error_type: str, provider: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status and body["error_type"] == error_type and body["provider"] == provider


def timed(call: Call, client: httpx.Client) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = call(client)
    return response, time.monotonic() - started


def failures(gw: Gateway, key: ServiceKey) -> int:
    breaker = gw.manager.pipeline.breakers.get(key)
    return 0 if breaker is None else breaker.fail_counter


@pytest.mark.parametrize("name", list(CALLS))
def test_slow_answers_within_the_timeout_succeed(gw: Gateway, name: str) -> None:
    provider, operation, call = CALLS[name]
    gw.fault(provider, operation=operation, latency_ms=600, chunk_delay_ms=100)
    response, elapsed = timed(call, gw.client)
    assert response.status_code == 200, response.text
    assert elapsed >= 0.6


@pytest.mark.parametrize("name", list(CALLS))
def test_a_hanging_provider_is_a_504_after_its_timeout(gw: Gateway, name: str) -> None:
    provider, operation, call = CALLS[name]
    gw.fault(provider, operation=operation, hang=True)
    response, elapsed = timed(call, gw.client)
    assert_problem(response, 504, "timeout", provider)
    assert TIMEOUT <= elapsed < TIMEOUT + 2


@pytest.mark.parametrize("name", list(CALLS))
def test_a_malformed_body_is_a_502(gw: Gateway, name: str) -> None:
    provider, operation, call = CALLS[name]
    gw.fault(provider, operation=operation, malformed=True)
    assert_problem(call(gw.client), 502, "upstream_malformed", provider)


@pytest.mark.parametrize("name", STREAMS)
def test_a_truncated_stream_ends_the_answer_visibly_incomplete(gw: Gateway, name: str) -> None:
    provider, operation, call = CALLS[name]
    key = ServiceKey(provider, operation)
    before = failures(gw, key)
    gw.fault(provider, operation=operation, truncate=True)
    started = time.monotonic()
    with pytest.raises(httpx.RemoteProtocolError):  # the chunked body never ends properly
        call(gw.client)
    assert time.monotonic() - started < 5
    assert failures(gw, key) == before + 1
    errors = gw.client.get("/health/metrics").json()["services"][str(key)]["errors"]
    assert errors.get("upstream_malformed", 0) >= 1


@pytest.mark.parametrize("name", ("sarvam.tts", "deepgram.tts"))
def test_a_stream_that_stalls_mid_way_is_cut_after_the_timeout(gw: Gateway, name: str) -> None:
    provider, operation, call = CALLS[name]
    gw.fault(provider, operation=operation, chunk_delay_ms=TIMEOUT * 1000 + 1500)
    started = time.monotonic()
    with pytest.raises(httpx.RemoteProtocolError):
        call(gw.client)
    assert time.monotonic() - started < TIMEOUT + 2
    errors = gw.client.get("/health/metrics").json()["services"][f"{provider}.{operation}"]["errors"]
    assert errors.get("timeout", 0) >= 1


def test_a_429_storm_under_concurrency_holds_every_caller_during_retry_after(gw: Gateway) -> None:
    gw.fault("sarvam", operation="translate", error_rate=1.0, status_code=429, retry_after=3)
    _, _, call = CALLS["sarvam.translate"]
    clients = [httpx.Client(base_url=gw.url, timeout=30) for _ in range(16)]
    try:
        with ThreadPoolExecutor(len(clients)) as pool:
            first = list(pool.map(call, clients))
        for response in first:
            assert_problem(response, 429, "upstream_rate_limited", "sarvam")
        gw.clear_faults()
        gw.clear_upstream_requests()
        with ThreadPoolExecutor(len(clients)) as pool:
            storm = list(pool.map(call, clients * 3))
        for response in storm:
            assert_problem(response, 429, "upstream_rate_limited", "sarvam")
            assert 1 <= int(response.headers["retry-after"]) <= 3
        assert gw.upstream_requests("sarvam") == []  # nobody called it during its Retry-After
        time.sleep(3.1)
        assert call(gw.client).status_code == 200
    finally:
        for client in clients:
            client.close()


@pytest.mark.parametrize("name", list(CALLS))
def test_a_refused_connection_is_a_502(refused: Gateway, name: str) -> None:
    provider, _, call = CALLS[name]
    response, elapsed = timed(call, refused.client)
    assert_problem(response, 502, "connection", provider)
    assert elapsed < TIMEOUT + 1


@pytest.fixture(scope="module")
def refused() -> Iterator[Gateway]:
    dead = f"http://127.0.0.1:{free_port()}"
    with running_gateway({**ENV, "SARVAM_BASE_URL": dead, "DEEPGRAM_BASE_URL": dead,
                          "OPENAI_BASE_URL": dead + "/v1"}) as gw:
        yield gw
