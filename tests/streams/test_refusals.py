"""A session passes the door: each refusal answers the handshake with its HTTP status, the
provider's error shape and ``X-Gateway-Error-Type`` (the SDKs raise their own typed error), and
never holds a bulkhead slot or leaves a rate-limit permit behind."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from deepgram.core.api_error import ApiError as DeepgramApiError
from sarvamai.core.api_error import ApiError as SarvamApiError

from tests.gateway import running_gateway
from tests.providers.test_bulkhead import in_flight, sample
from tests.support import live_server

from . import clients, raw

KEYS = {"GATEWAY_API_KEYS": clients.CLIENT_KEY}


async def test_a_wrong_client_key_is_refused_as_the_provider_refuses_a_bad_key() -> None:
    with running_gateway(KEYS) as gw:
        with pytest.raises(DeepgramApiError) as deepgram:
            await clients.deepgram_transcripts(gw.url, 0.5, key="wrong")
        assert deepgram.value.status_code == 401
        with pytest.raises(SarvamApiError) as sarvam:
            await clients.sarvam_transcript(gw.url, 0.5, key="wrong")
        assert sarvam.value.status_code == 403
        refused = await raw.refusal(gw.url, headers={"Authorization": "Token wrong"})
        assert refused.status == 401
        assert refused.headers["x-gateway-error-type"] == "unauthorized"
        assert refused.body["err_code"] == "INVALID_AUTH"
        assert gw.upstream_requests() == []


@pytest.mark.parametrize(("path", "named"), [
    ("/deepgram/v1/listen?encoding=mp9&sample_rate=16000", "encoding"),
    ("/deepgram/v1/listen?encoding=linear16", "sample_rate"),
    ("/deepgram/v1/listen?encoding=linear16&sample_rate=fast", "sample_rate"),
    ("/deepgram/v1/speak?sample_rate=11025", "sample_rate"),
])
async def test_an_audio_format_the_provider_does_not_take_is_refused_before_it_is_called(path: str, named: str,
                                                                                        ) -> None:
    with running_gateway() as gw:
        refused = await raw.refusal(gw.url, path)
        assert refused.status == 422
        assert refused.headers["x-gateway-error-type"] == "invalid_input"
        assert named in refused.body["err_msg"]
        operation = "tts" if "speak" in path else "stt"
        assert sample(gw, "provider_client_rejections_total", provider="deepgram", operation=operation,
                      reason="invalid_input") == 1
        assert gw.upstream_requests() == []


async def test_sarvam_refusals_are_in_sarvam_shape() -> None:
    with running_gateway() as gw:
        refused = await raw.refusal(gw.url, "/sarvam/speech-to-text/ws?language-code=hi-IN&sample_rate=44100",
                                    headers={"api-subscription-key": "k"})
        assert refused.status == 422
        assert refused.body["error"]["code"] == "unprocessable_entity_error"


async def test_each_session_takes_a_rate_limit_permit() -> None:
    with running_gateway({"DEEPGRAM_RATE_LIMIT": "1"}) as gw:
        await clients.deepgram_transcripts(gw.url, 0.5)
        refused = await raw.refusal(gw.url)
        assert refused.status == 429
        assert refused.headers["x-gateway-error-type"] == "rate_limited"
        assert int(refused.headers["retry-after"]) >= 1


async def test_a_session_holds_its_bulkhead_slot_until_it_ends() -> None:
    with running_gateway({"DEEPGRAM_MAX_CONCURRENCY": "1"}) as gw:
        async with raw.open_session(gw.url) as first:
            assert in_flight(gw, "deepgram") == 1
            refused = await raw.refusal(gw.url)
            assert refused.status == 503
            assert refused.headers["x-gateway-error-type"] == "overloaded"
            await first.send(b"\0" * 3200)
        await asyncio.sleep(0.2)
        assert in_flight(gw, "deepgram") == 0
        assert len(await clients.deepgram_transcripts(gw.url, 1.0)) == 2


@pytest.mark.parametrize(("status", "gateway_status", "error_type"), [
    (401, 502, "auth"), (429, 429, "upstream_rate_limited"), (503, 502, "upstream_5xx"),
])
async def test_an_upgrade_the_provider_refuses(status: int, gateway_status: int, error_type: str) -> None:
    with running_gateway() as gw:
        gw.fault("deepgram", operation="stt", error_rate=1.0, status_code=status)
        refused = await raw.refusal(gw.url)
        assert refused.status == gateway_status
        assert refused.headers["x-gateway-error-type"] == error_type
        summary = gw.client.get("/health/metrics").json()["services"]["deepgram.stt"]
        assert summary["errors"] == {error_type: 1}
        assert in_flight(gw, "deepgram") == 0


async def test_an_open_breaker_refuses_sessions() -> None:
    with running_gateway({"DEEPGRAM_MAX_FAILURES": "1"}) as gw:
        gw.fault("deepgram", operation="stt", error_rate=1.0, status_code=503)
        assert (await raw.refusal(gw.url)).status == 502
        gw.clear_faults()
        gw.clear_upstream_requests()
        refused = await raw.refusal(gw.url)
        assert refused.status == 503
        assert refused.headers["x-gateway-error-type"] == "circuit_open"
        assert gw.upstream_requests() == []


async def test_an_upgrade_that_hangs_times_out() -> None:
    with running_gateway({"DEEPGRAM_TIMEOUT": "1"}) as gw:
        gw.fault("deepgram", operation="stt", hang=True)
        try:
            refused = await raw.refusal(gw.url)
        finally:
            gw.clear_faults()
        assert refused.status == 504
        assert refused.headers["x-gateway-error-type"] == "timeout"
        assert in_flight(gw, "deepgram") == 0


async def test_without_the_denial_extension_a_refusal_is_a_close_naming_the_error_type() -> None:
    """A server that cannot answer a handshake with HTTP (no "websocket.http.response"): the session
    is accepted and closed at once, 1013 for the rate limit, the reason naming its error type."""
    with running_gateway({"DEEPGRAM_RATE_LIMIT": "1"}) as gw:
        app: Any = gw.app

        async def no_denials(scope: Any, receive: Any, send: Any) -> None:
            await app({**scope, "extensions": {}} if scope["type"] == "websocket" else scope, receive, send)

        with live_server(no_denials) as server:
            await clients.deepgram_transcripts(server.url, 0.5)
            async with raw.open_session(server.url) as socket:
                code, reason = await raw.closed(socket)
    assert code == 1013
    assert reason.startswith("rate_limited: ")
