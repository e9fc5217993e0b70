"""The drop-in routes price their calls like ``/v1``, attributed to the name of the key the SDK
carries: Deepgram's speak by the voice the caller named (or Deepgram's own default voice), its
listen by the audio's seconds (a file, or a live session's audio at its close), OpenAI's streamed
chat by the usage the gateway asked for."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from openai.types.chat import ChatCompletionMessageParam

from app.simulator.audio import synth_wav
from tests.dropin.sdks import CLIENT_KEY, deepgram_sdk, openai_sdk, sarvam_sdk
from tests.gateway import Gateway, running_gateway
from tests.streams import clients

from .test_costs import INR_PER_USD, cost, usage

TEAM = {"client": "team-c"}


@pytest.fixture(scope="module")
def gw() -> Iterator[Gateway]:
    with running_gateway({"GATEWAY_API_KEYS": f"team-c:{CLIENT_KEY}", "FALLBACKS_ENABLED": "false"}) as gateway:
        yield gateway


def test_deepgram_speak_is_priced_by_the_voice_named_or_deepgrams_default(gw: Gateway) -> None:
    text = "Hello from the gateway."  # 23 characters
    before = cost(gw, provider="deepgram", operation="tts", model="aura-2-thalia-en", **TEAM)
    b"".join(deepgram_sdk(gw.url).speak.v1.audio.generate(text=text, model="aura-2-thalia-en", encoding="linear16",
                                                         container="wav", sample_rate=16000))
    assert cost(gw, provider="deepgram", operation="tts", model="aura-2-thalia-en", **TEAM) - before == \
        pytest.approx(23 * 0.030 / 1000, rel=1e-9)  # Aura-2
    before = cost(gw, provider="deepgram", operation="tts", model="aura-asteria-en", **TEAM)
    httpx.post(f"{gw.url}/deepgram/v1/speak", json={"text": text}, headers={"authorization": f"Token {CLIENT_KEY}"},
               timeout=30).raise_for_status()
    assert cost(gw, provider="deepgram", operation="tts", model="aura-asteria-en", **TEAM) - before == \
        pytest.approx(23 * 0.015 / 1000, rel=1e-9)  # Deepgram's default voice is Aura-1


def test_deepgram_listen_is_priced_by_the_audio_seconds(gw: Gateway) -> None:
    before = cost(gw, provider="deepgram", operation="stt", **TEAM)
    deepgram_sdk(gw.url).listen.v1.media.transcribe_file(request=synth_wav(2.25, 16000), model="nova-3", language="en")
    assert cost(gw, provider="deepgram", operation="stt", **TEAM) - before == pytest.approx(2.25 * 0.0048 / 60,
                                                                                           rel=1e-6)


async def test_a_deepgram_live_session_is_priced_by_its_audio_seconds_at_close(gw: Gateway) -> None:
    """Through the SDK's WebSocket client (``/deepgram/v1/listen``): 3.7 seconds of 16 kHz linear16
    audio at Nova-3's $0.0048 a minute, billed once when the session ends, to the key's name."""
    before = cost(gw, provider="deepgram", operation="stt", **TEAM)
    seconds = usage(gw, provider="deepgram", operation="stt", unit="audio_second", **TEAM)
    messages = await clients.deepgram_transcripts(gw.url, 3.7, key=CLIENT_KEY)
    assert messages[-1].type == "Metadata" and messages[-1].duration == pytest.approx(3.7)
    assert usage(gw, provider="deepgram", operation="stt", unit="audio_second", **TEAM) - seconds == \
        pytest.approx(3.7, rel=1e-9)
    assert cost(gw, provider="deepgram", operation="stt", **TEAM) - before == pytest.approx(3.7 * 0.0048 / 60,
                                                                                           rel=1e-9)


def test_sarvam_translate_is_priced_by_the_characters(gw: Gateway) -> None:
    before = cost(gw, provider="sarvam", operation="translate", **TEAM)
    sarvam_sdk(gw.url).text.translate(input="How are you today?", source_language_code="en-IN",
                                      target_language_code="hi-IN")
    assert cost(gw, provider="sarvam", operation="translate", **TEAM) - before == pytest.approx(
        18 * 20 / 10_000 / INR_PER_USD, rel=1e-9)


def test_openai_streamed_chat_through_the_sdk_is_priced_by_its_tokens(gw: Gateway) -> None:
    sdk = openai_sdk(gw.url)
    messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": "name three rivers of India"}]
    before = cost(gw, provider="openai", operation="chat", **TEAM)
    chunks = list(sdk.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True,
                                              stream_options={"include_usage": True}))
    usage = chunks[-1].usage
    assert usage is not None
    assert cost(gw, provider="openai", operation="chat", **TEAM) - before == pytest.approx(
        usage.prompt_tokens * 0.15e-6 + usage.completion_tokens * 0.60e-6, rel=1e-9)
