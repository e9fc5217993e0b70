"""``/v1/stt/stream``: the gateway's own live speech-to-text protocol, on the provider the fallback
rules of ``/v1/stt`` pick at connect time."""

from __future__ import annotations

import json

import pytest

from tests.gateway import Gateway, running_gateway
from tests.providers.test_bulkhead import sample
from tests.support import wait_until_async

from . import raw

AUTH = {"Authorization": "Bearer gw-stream-client-key"}
HUNDRED_MS = b"\0" * 3200


async def transcribe(gw: Gateway, query: str, seconds: float) -> tuple[dict[str, object], list[dict[str, object]]]:
    """Stream ``seconds`` of 16 kHz audio, finalize, and read the session greeting and transcripts."""
    async with raw.open_session(gw.url, f"/v1/stt/stream?{query}", AUTH) as socket:
        greeting = json.loads(await socket.recv())
        for _ in range(round(seconds * 10)):
            await socket.send(HUNDRED_MS)
        await socket.send(json.dumps({"type": "finalize"}))
        transcripts: list[dict[str, object]] = []
        heard = 0.0
        while heard < seconds - 1e-6:
            event = json.loads(await socket.recv())
            transcripts.append(event)
            heard += float(event["audio_seconds"])
    return greeting, transcripts


@pytest.mark.parametrize(("language", "provider"), [("hi-IN", "sarvam"), ("en-US", "deepgram")])
async def test_transcripts_stream_back_from_the_provider_picked(language: str, provider: str) -> None:
    with running_gateway({"GATEWAY_API_KEYS": "gw-stream-client-key"}) as gw:
        greeting, transcripts = await transcribe(gw, f"language_code={language}", 2.5)
        assert greeting == {"type": "session", "provider": provider, "fallback": False}
        assert {t["type"] for t in transcripts} == {"transcript"}
        assert len(" ".join(str(t["text"]) for t in transcripts).split()) == round(2.5 * 2.5)
        counted = await wait_until_async(lambda: sample(gw, "provider_client_audio_duration_seconds_total",
                                                        provider=provider, operation="stt"), 5, "the session's end")
        assert counted == pytest.approx(2.5)


@pytest.mark.parametrize(("order", "first", "second"), [("auto", "sarvam", "deepgram"),
                                                         ("deepgram,sarvam", "deepgram", "sarvam")])
async def test_a_session_starts_on_the_other_provider_while_the_first_ones_breaker_is_open(
    order: str, first: str, second: str,
) -> None:
    """Hindi, which both speak, goes to Sarvam first by default, to Deepgram first when
    ``FALLBACKS_SPEECH_ORDER`` says so (English outside India has only Deepgram)."""
    with running_gateway({"FALLBACKS_SPEECH_ORDER": order, f"{first.upper()}_MAX_FAILURES": "1"}) as gw:
        greeting, _ = await transcribe(gw, "language_code=hi-IN", 1.0)
        assert greeting == {"type": "session", "provider": first, "fallback": False}
        gw.fault(first, operation="stt", error_rate=1.0, status_code=503)
        refused = await raw.refusal(gw.url, f"/v1/stt/stream?language_code=hi-IN&provider={first}", AUTH)
        assert refused.status == 502
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.body["error_type"] == "upstream_5xx"
        gw.clear_faults()
        gw.clear_upstream_requests()
        greeting, transcripts = await transcribe(gw, "language_code=hi-IN", 1.0)
        assert greeting == {"type": "session", "provider": second, "fallback": True}
        assert transcripts
        assert [r["provider"] for r in gw.upstream_requests()] == [second]  # the open breaker refused


@pytest.mark.parametrize(("query", "named"), [("", "language_code"), ("language_code=hi-IN&sample_rate=44100",
                                                                       "sample_rate"),
                                              ("language_code=hi-IN&provider=openai", "provider")])
async def test_bad_queries_are_refused_with_a_problem(query: str, named: str) -> None:
    with running_gateway() as gw:
        refused = await raw.refusal(gw.url, f"/v1/stt/stream?{query}", AUTH)
        assert refused.status == 422
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.body["error_type"] == "invalid_input"
        assert named in refused.body["detail"]
        assert sample(gw, "provider_client_rejections_total", provider="sarvam", operation="stt",
                      reason="invalid_input") == 1


async def test_a_missing_key_is_refused() -> None:
    with running_gateway({"GATEWAY_API_KEYS": "gw-stream-client-key"}) as gw:
        refused = await raw.refusal(gw.url, "/v1/stt/stream?language_code=hi-IN", {"Authorization": "Bearer no"})
        assert refused.status == 401
        assert refused.body["error_type"] == "unauthorized"


async def test_a_session_is_priced_at_its_close_for_the_keys_name() -> None:
    """English goes to Deepgram, asked for Nova-3 ($0.0048 a minute): 3.2 seconds of audio cost
    3.2 * 0.0048 / 60 USD, attributed to the name of the key, once the session ends."""
    with running_gateway({"GATEWAY_API_KEYS": "team-s:gw-stream-client-key"}) as gw:
        await transcribe(gw, "language_code=en-US", 3.2)
        cost = await wait_until_async(lambda: sample(gw, "provider_client_cost_usd_total", provider="deepgram",
                                                     operation="stt", model="nova-3", client="team-s"),
                                      5, "the session's cost")
        assert cost == pytest.approx(3.2 * 0.0048 / 60, rel=1e-9)
