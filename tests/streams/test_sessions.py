"""How an accepted session ends: a provider that drops its socket or sends no first result in time
fails it (1011, counted against the provider); the caller's silence, an oversized message or the
session's length end it with 1008; the provider's own close is relayed; and whatever ends it, its
bulkhead slot is returned (shutdown: test_shutdown.py)."""

from __future__ import annotations

import asyncio
import base64
import json

from tests.gateway import Gateway, running_gateway
from tests.providers.test_bulkhead import in_flight
from tests.support import wait_until_async

from . import clients, raw

SECOND = b"\0" * 32000
"""One second of 16 kHz 16-bit silence."""


def errors(gw: Gateway) -> dict[str, int]:
    return dict(gw.client.get("/health/metrics").json()["services"]["deepgram.stt"]["errors"])


async def slot_returned(gw: Gateway, provider: str = "deepgram") -> None:
    await wait_until_async(lambda: in_flight(gw, provider) == 0, 5, "the session's bulkhead slot to be returned")


async def test_a_provider_that_drops_the_socket_fails_the_session() -> None:
    with running_gateway() as gw:
        gw.fault("deepgram", operation="stt", truncate=True)
        async with raw.open_session(gw.url) as socket:
            await socket.send(SECOND)
            first = json.loads(await socket.recv())
            code, reason = await raw.closed(socket)
        assert first["type"] == "Results"
        assert (code, reason) == (1011, "connection: deepgram dropped the session")
        assert errors(gw) == {"connection": 1}
        await slot_returned(gw)


async def test_a_first_result_later_than_the_timeout_fails_the_session() -> None:
    with running_gateway({"DEEPGRAM_TIMEOUT": "0.5"}) as gw:
        gw.fault("deepgram", operation="stt", latency_ms=3000)
        async with raw.open_session(gw.url) as socket:
            await socket.send(SECOND)
            code, reason = await raw.closed(socket)
        assert code == 1011
        assert reason.startswith("timeout: deepgram sent no result within 0.5 s")
        assert errors(gw) == {"timeout": 1}
        await slot_returned(gw)


async def test_a_first_result_within_the_timeout_is_the_sessions_latency() -> None:
    with running_gateway() as gw:
        gw.fault("deepgram", operation="stt", latency_ms=300)
        await clients.deepgram_transcripts(gw.url, 1.0)
        summary = gw.client.get("/health/metrics").json()["services"]["deepgram.stt"]
        assert summary["successes"] == 1
        assert 300 <= summary["latency_max_ms"] < 1000


async def test_a_silent_caller_is_closed_after_the_idle_timeout() -> None:
    with running_gateway({"STREAM_IDLE_TIMEOUT": "0.3"}) as gw:
        async with raw.open_session(gw.url) as socket:
            code, reason = await raw.closed(socket)
        assert code == 1008
        assert reason == "invalid_input: the caller sent nothing for STREAM_IDLE_TIMEOUT (0.3 s)"
        await slot_returned(gw)


async def test_a_message_over_the_frame_limit_ends_the_session() -> None:
    with running_gateway({"STREAM_MAX_FRAME_BYTES": "4000"}) as gw:
        async with raw.open_session(gw.url) as socket:
            await socket.send(b"\0" * 3200)
            await socket.send(b"\0" * 4001)
            code, reason = await raw.closed(socket)
        assert code == 1008
        assert reason.startswith("invalid_input: a message of 4001 bytes is over STREAM_MAX_FRAME_BYTES")
        await slot_returned(gw)


async def test_a_session_ends_at_its_maximum_length() -> None:
    with running_gateway({"DEEPGRAM_MAX_STREAM_SECONDS": "1"}) as gw:
        async with raw.open_session(gw.url) as socket:
            async def keep_talking() -> None:
                for _ in range(30):
                    await socket.send(b"\0" * 3200)
                    await asyncio.sleep(0.1)

            talking = asyncio.create_task(keep_talking())
            code, reason = await raw.closed(socket)
            talking.cancel()
        assert code == 1008
        assert reason == "invalid_input: the session reached P_MAX_STREAM_SECONDS (1 s)"
        await slot_returned(gw)


async def test_the_providers_close_code_is_relayed() -> None:
    with running_gateway() as gw:
        path = "/sarvam/speech-to-text/ws?language-code=hi-IN"
        async with raw.open_session(gw.url, path, {"api-subscription-key": clients.CLIENT_KEY}) as socket:
            await socket.send(json.dumps({"audio": {"data": "not base64!", "sample_rate": 16000}}))
            error = json.loads(await socket.recv())
            code, reason = await raw.closed(socket)
        assert error["type"] == "error"
        assert (code, reason) == (1008, "audio data is not base64")
        await slot_returned(gw, "sarvam")


async def test_a_caller_that_vanishes_returns_its_slot() -> None:
    with running_gateway() as gw:
        async with raw.open_session(gw.url) as socket:
            await socket.send(SECOND)
            await socket.recv()
            assert in_flight(gw, "deepgram") == 1
            socket.transport.abort()  # no close frame
        await slot_returned(gw)
        summary = gw.client.get("/health/metrics").json()["services"]["deepgram.stt"]
        assert (summary["successes"], summary["failures"]) == (1, 0)


async def test_audio_is_relayed_as_sent() -> None:
    with running_gateway() as gw:
        path = "/sarvam/speech-to-text/ws?language-code=en-IN&sample_rate=16000"
        async with raw.open_session(gw.url, path, {"api-subscription-key": clients.CLIENT_KEY}) as socket:
            pcm = base64.b64encode(b"\0" * 48000).decode()  # 1.5 s
            await socket.send(json.dumps({"audio": {"data": pcm, "sample_rate": 16000}}))
            answer = json.loads(await socket.recv())
        assert answer["data"]["metrics"]["audio_duration"] == 1.5



async def test_more_sessions_than_a_connection_pool_holds_are_relayed_at_once() -> None:
    """120 sessions held open together: each provider socket is held for its whole session, so the
    provider side has no connection cap of its own (with aiohttp's default of 100, the 101st
    session's upgrade waited for a socket until it timed out with 504); the bulkhead (256) bounds them."""
    sessions = 120
    opened: list[int] = []
    go = asyncio.Event()

    async def one(url: str) -> str:
        async with raw.open_session(url) as socket:  # accepted once the provider accepted
            opened.append(1)
            await go.wait()  # every session is open before any sends
            await socket.send(SECOND)
            return str(json.loads(await socket.recv())["type"])

    with running_gateway({"DEEPGRAM_RATE_LIMIT": "1000"}) as gw:
        tasks = [asyncio.create_task(one(gw.url)) for _ in range(sessions)]
        await wait_until_async(lambda: len(opened) == sessions, 20, f"{sessions} sessions open at once")
        go.set()
        assert await asyncio.gather(*tasks) == ["Results"] * sessions
        await slot_returned(gw)
