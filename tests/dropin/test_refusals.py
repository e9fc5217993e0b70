"""Refusals seen by the official SDKs as their own typed errors: the gateway's own refusals in each
provider's error shape (``X-Gateway-Error-Type`` naming our error type, ``Retry-After`` where it
applies), and the provider's own errors relayed as it sent them."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from deepgram.core.api_error import ApiError as DeepgramApiError
from sarvamai.core.api_error import ApiError as SarvamApiError
from sarvamai.errors import (
    ForbiddenError,
    InternalServerError,
    TooManyRequestsError,
    UnprocessableEntityError,
)

from app.simulator.audio import synth_wav
from tests.gateway import Gateway, running_gateway
from tests.providers.test_bulkhead import in_flight, sample
from tests.support import wait_until_async

from .sdks import CLIENT_KEY, NO_RETRIES, deepgram_sdk, openai_sdk, sarvam_sdk

CHAT: dict[str, Any] = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
KEYS = {"GATEWAY_API_KEYS": f"other-client, {CLIENT_KEY}"}


def headers_of(error: BaseException) -> httpx.Headers:
    """The answer's headers, from whichever SDK raised ``error``."""
    if isinstance(error, openai.APIStatusError):
        return httpx.Headers(dict(error.response.headers))
    assert isinstance(error, SarvamApiError | DeepgramApiError) and error.headers is not None
    return httpx.Headers(error.headers)


def refused(call: Callable[[], object], error_class: type[BaseException], status: int, error_type: str,
            ) -> tuple[Any, httpx.Headers]:
    """Run ``call`` and check the SDK raised ``error_class`` for ``status``, naming ``error_type``;
    returns the error's body (as the SDK parsed it) and the answer's headers."""
    with pytest.raises(error_class) as caught:
        call()
    error: Any = caught.value
    assert error.status_code == status, error
    headers = headers_of(error)
    assert headers["x-gateway-error-type"] == error_type
    return error.body, headers


def translate(gw: Gateway, text: str = "hello") -> Callable[[], object]:
    return lambda: sarvam_sdk(gw.url).text.translate(input=text, source_language_code="en-IN",
                                                     target_language_code="hi-IN", request_options=NO_RETRIES)


def chat(gw: Gateway, **extra: Any) -> Callable[[], object]:
    return lambda: openai_sdk(gw.url).chat.completions.create(**{**CHAT, **extra})


def listen(gw: Gateway, seconds: float = 0.5) -> Callable[[], object]:
    return lambda: deepgram_sdk(gw.url).listen.v1.media.transcribe_file(request=synth_wav(seconds, 8000))


def assert_each_sdk_refused(gw: Gateway, key: str) -> None:
    """Each SDK calling with ``key`` (not a client key) gets its own authentication error."""
    body, _ = refused(lambda: openai_sdk(gw.url, key).chat.completions.create(**CHAT),
                      openai.AuthenticationError, 401, "unauthorized")
    assert body["code"] == "invalid_api_key"  # the SDK hands over the "error" object
    body, _ = refused(lambda: sarvam_sdk(gw.url, key).text.translate(
        input="hi", source_language_code="en-IN", target_language_code="hi-IN"),
        ForbiddenError, 403, "unauthorized")
    assert body["error"]["code"] == "invalid_api_key_error"
    body, _ = refused(lambda: b"".join(deepgram_sdk(gw.url, key).speak.v1.audio.generate(text="hi")),
                      DeepgramApiError, 401, "unauthorized")
    assert body["err_code"] == "INVALID_AUTH"


def test_a_wrong_client_key_is_each_sdks_own_authentication_error() -> None:
    with running_gateway(KEYS) as gw:
        for key in ("not-a-client-key", CLIENT_KEY[:-1]):
            assert_each_sdk_refused(gw, key)
        # The key in another provider's place is no credential for this one.
        misplaced = gw.client.post("/sarvam/translate", json={"input": "hi", "target_language_code": "hi-IN"},
                                   headers={"Authorization": f"Bearer {CLIENT_KEY}"})
        assert misplaced.status_code == 403
        assert gw.upstream_requests() == []
        # Deepgram's access tokens (Bearer) carry it as well as its API keys (Token).
        token = gw.client.post("/deepgram/v1/speak", json={"text": "hi"},
                               headers={"Authorization": f"Bearer {CLIENT_KEY}"})
        assert token.status_code == 200 and token.content.startswith(b"RIFF")
        assert b"".join(deepgram_sdk(gw.url).speak.v1.audio.generate(text="hi")).startswith(b"RIFF")
        assert openai_sdk(gw.url).chat.completions.create(**CHAT).choices


def test_our_rate_limit_is_each_sdks_429_with_retry_after() -> None:
    env = {f"{p}_RATE_LIMIT": "1" for p in ("SARVAM", "DEEPGRAM", "OPENAI")}
    with running_gateway(env) as gw:
        translate(gw)()
        chat(gw)()
        listen(gw)()
        body, headers = refused(translate(gw), TooManyRequestsError, 429, "rate_limited")
        assert body["error"]["code"] == "rate_limit_exceeded_error" and int(headers["retry-after"]) >= 1
        _, headers = refused(chat(gw), openai.RateLimitError, 429, "rate_limited")
        assert int(headers["retry-after"]) >= 1
        body, headers = refused(listen(gw), DeepgramApiError, 429, "rate_limited")
        assert body["err_code"] == "TOO_MANY_REQUESTS" and int(headers["retry-after"]) >= 1
        for provider, operation in (("sarvam", "translate"), ("openai", "chat"), ("deepgram", "stt")):
            assert sample(gw, "provider_client_rejections_total", provider=provider, operation=operation,
                          reason="rate_limited") == 1


def test_an_open_breaker_is_each_sdks_503_after_the_providers_own_500s() -> None:
    env = {f"{p}_MAX_FAILURES": "2" for p in ("SARVAM", "DEEPGRAM", "OPENAI")}
    with running_gateway(env) as gw:
        for provider in ("sarvam", "openai", "deepgram"):
            gw.fault(provider, error_rate=1.0, status_code=500)
        # Each provider's own 500, relayed as it sent it (its own message, not the gateway's).
        calls: list[tuple[Callable[[], object], type[BaseException], type[BaseException], Callable[[Any], str]]] = [
            (translate(gw), InternalServerError, SarvamApiError, lambda body: body["error"]["message"]),
            (chat(gw), openai.InternalServerError, openai.InternalServerError, lambda body: body["message"]),
            (listen(gw), DeepgramApiError, DeepgramApiError, lambda body: body["err_msg"]),
        ]
        messages = []
        for call, failed, opened, message in calls:
            for _ in range(2):
                body, _ = refused(call, failed, 500, "upstream_5xx")
                messages.append(message(body))
            body, headers = refused(call, opened, 503, "circuit_open")
            assert 1 <= int(headers["retry-after"]) <= 60 and "circuit breaker" in message(body)
        assert messages == [m for m in (
            "Internal server error. Please try again later.",
            "The server had an error while processing your request. Sorry about that!",
            "Internal server error.") for _ in range(2)]
        assert len(gw.upstream_requests()) == 6  # the open breakers sent nothing on


async def test_a_full_bulkhead_is_the_sdks_503_overloaded() -> None:
    with running_gateway({"OPENAI_MAX_CONCURRENCY": "1"}) as gw:
        gw.fault("openai", operation="chat", hang=True)
        with ThreadPoolExecutor(1) as pool:
            held = asyncio.wrap_future(pool.submit(chat(gw)))
            await wait_until_async(lambda: in_flight(gw, "openai") == 1, 20, what="one chat call in flight")
            body, headers = await asyncio.to_thread(refused, chat(gw), openai.InternalServerError, 503, "overloaded")
            assert headers["retry-after"] == "1" and "in flight" in body["message"]
            gw.clear_faults()
            await held
        assert sample(gw, "provider_client_rejections_total", provider="openai", operation="chat",
                      reason="overloaded") == 1


def test_a_timeout_is_504_and_the_providers_refusal_of_our_key_is_not_the_callers() -> None:
    with running_gateway({"OPENAI_TIMEOUT": "0.5", "SARVAM_TIMEOUT": "0.5"}) as gw:
        gw.fault("openai", operation="chat", latency_ms=2000)
        refused(chat(gw), openai.InternalServerError, 504, "timeout")
        gw.fault("sarvam", operation="translate", latency_ms=2000)
        refused(translate(gw), SarvamApiError, 504, "timeout")
        gw.clear_faults()
        # Sarvam refusing the gateway's provider key must not read as the caller's key being wrong.
        gw.fault("sarvam", operation="translate", error_rate=1.0, status_code=403)
        body, _ = refused(translate(gw), SarvamApiError, 502, "auth")
        assert body["error"]["code"] == "internal_server_error"
        gw.fault("openai", operation="chat", error_rate=1.0, status_code=401)
        refused(chat(gw), openai.InternalServerError, 502, "auth")


def test_the_providers_429_is_relayed_and_then_held_by_the_gateway() -> None:
    with running_gateway() as gw:
        gw.fault("deepgram", operation="tts", error_rate=1.0, status_code=429, retry_after=3)

        def speak() -> bytes:
            return b"".join(deepgram_sdk(gw.url).speak.v1.audio.generate(text="hello"))

        body, headers = refused(speak, DeepgramApiError, 429, "upstream_rate_limited")
        assert body["err_code"] == "TOO_MANY_REQUESTS" and headers["retry-after"] == "3"
        assert headers["dg-request-id"] == body["request_id"]  # Deepgram's own answer
        gw.clear_upstream_requests()
        body, headers = refused(speak, DeepgramApiError, 429, "upstream_rate_limited")
        assert 1 <= int(headers["retry-after"]) <= 3 and "wait" in body["err_msg"]
        assert gw.upstream_requests() == []  # held by the gateway, as on /v1


def test_invalid_input_is_422_or_413_and_never_reaches_the_provider(tmp_path: Path) -> None:
    env = {"SARVAM_MAX_TEXT_LENGTH": "20", "OPENAI_MAX_TEXT_LENGTH": "20", "DEEPGRAM_MAX_TEXT_LENGTH": "20",
           "SARVAM_MAX_AUDIO_SIZE_MB": "0.1", "DEEPGRAM_MAX_AUDIO_SIZE_MB": "0.1",
           "DEEPGRAM_MAX_AUDIO_DURATION_SEC": "2"}
    with running_gateway(env) as gw:
        body, _ = refused(translate(gw, "x" * 21), UnprocessableEntityError, 422, "invalid_input")
        assert "21 characters" in body["error"]["message"]
        refused(chat(gw, messages=[{"role": "user", "content": "y" * 21}]), openai.UnprocessableEntityError, 422,
                "invalid_input")
        refused(lambda: b"".join(deepgram_sdk(gw.url).speak.v1.audio.generate(text="z" * 21)), DeepgramApiError,
                422, "invalid_input")
        refused(listen(gw, 3.0), DeepgramApiError, 422, "invalid_input")  # 3 s of audio, 2 s allowed
        big = synth_wav(4.0, 16000)  # 128 KB, 0.1 MB allowed
        refused(lambda: sarvam_sdk(gw.url).speech_to_text.transcribe(
            file=("a.wav", io.BytesIO(big), "audio/wav"), request_options=NO_RETRIES), SarvamApiError, 413,
            "invalid_input")
        refused(lambda: deepgram_sdk(gw.url).listen.v1.media.transcribe_file(request=big), DeepgramApiError, 413,
                "invalid_input")
        refused(lambda: deepgram_sdk(gw.url).listen.v1.media.transcribe_file(request=b"not audio" * 50),
                DeepgramApiError, 422, "invalid_input")
        assert gw.upstream_requests() == []
        # Audio refused before the call passes the door too (checked by the gateway, as on /v1).
        for provider, operation, count in (("sarvam", "translate", 1), ("openai", "chat", 1), ("deepgram", "tts", 1),
                                           ("sarvam", "stt", 1), ("deepgram", "stt", 3)):
            assert sample(gw, "provider_client_rejections_total", provider=provider, operation=operation,
                          reason="invalid_input") == count
