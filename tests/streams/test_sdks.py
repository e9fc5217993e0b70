"""The official SDKs' streaming clients work through the gateway by changing their base URL only:
Deepgram's live transcription and speech, Sarvam's streaming speech-to-text and text-to-speech.
The gateway client key travels in the SDK's own credential; the provider (here the simulator) is
reached with the gateway's key, its transcripts grow with the audio sent, and each session shows
in the stream metrics, the usage counters and the in-app recorder once."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.gateway import Gateway, running_gateway
from tests.providers.test_bulkhead import in_flight, sample
from tests.support import wait_until_async

from . import clients

WORDS_PER_SECOND = 2.5


@pytest.fixture(scope="module")
def gateway() -> Iterator[Gateway]:
    with running_gateway({"GATEWAY_API_KEYS": f"other-client, {clients.CLIENT_KEY}"}) as gw:
        yield gw


def words(messages: list[object]) -> list[str]:
    return [word for m in messages if getattr(m, "type", None) == "Results"
            for word in m.channel.alternatives[0].transcript.split()]  # type: ignore[attr-defined]


async def test_deepgram_live_transcription_grows_with_the_audio_sent(gateway: Gateway) -> None:
    gateway.clear_upstream_requests()
    short = await clients.deepgram_transcripts(gateway.url, 2.5)
    long = await clients.deepgram_transcripts(gateway.url, 4.0)
    assert [m.type for m in short] == ["Results", "Results", "Results", "Metadata"]
    assert short[-1].duration == pytest.approx(2.5)
    assert [m.start for m in short[:3]] == [0.0, 1.0, 2.0]
    assert len(words(short)) == round(2.5 * WORDS_PER_SECOND)
    assert len(words(long)) == round(4.0 * WORDS_PER_SECOND)
    upstream = gateway.upstream_requests("deepgram")
    assert [r["path"] for r in upstream] == ["/_sim/deepgram/v1/listen"] * 2


async def test_deepgram_live_speech_streams_audio_for_the_text(gateway: Gateway) -> None:
    text = "hello from the gateway"
    audio, messages = await clients.deepgram_speech(gateway.url, text)
    assert [m.type for m in messages] == ["Metadata", "Flushed"]
    assert len(audio) == round(len(text) * 0.06 * 24000) * 2  # linear16 at 24 kHz


async def test_sarvam_streaming_transcription(gateway: Gateway) -> None:
    answer = await clients.sarvam_transcript(gateway.url, 2.0)
    assert answer.type == "data"
    assert answer.data.metrics.audio_duration == pytest.approx(2.0)
    assert len(answer.data.transcript.split()) == round(2.0 * WORDS_PER_SECOND)
    assert answer.data.language_code == "hi-IN"


async def test_sarvam_streaming_speech(gateway: Gateway) -> None:
    audio, final = await clients.sarvam_speech(gateway.url, "namaste")
    assert (audio.type, final.type) == ("audio", "event")
    assert audio.data.audio.startswith("UklGR")  # a base64 WAV
    assert final.data.event_type == "final"


async def test_a_session_is_counted_once_at_its_end(gateway: Gateway) -> None:
    labels = {"provider": "deepgram", "operation": "stt"}
    before = gateway.client.get("/health/metrics").json()["services"].get("deepgram.stt", {}).get("requests", 0)
    messages_in = sample(gateway, "provider_stream_messages_total", direction="in", **labels) or 0
    audio = sample(gateway, "provider_client_audio_duration_seconds_total", **labels) or 0
    first = sample(gateway, "provider_stream_time_to_first_result_seconds_count", **labels) or 0
    await clients.deepgram_transcripts(gateway.url, 2.0)

    def summary() -> dict[str, Any]:
        return dict(gateway.client.get("/health/metrics").json()["services"]["deepgram.stt"])

    # The gateway records a session after closing both sockets: the caller may see the close first.
    await wait_until_async(lambda: summary()["requests"] == before + 1, 5, "the session to be recorded")
    assert summary()["failures"] == 0
    assert sample(gateway, "provider_stream_messages_total", direction="in", **labels) == messages_in + 21
    assert sample(gateway, "provider_client_audio_duration_seconds_total", **labels) == pytest.approx(audio + 2.0)
    assert sample(gateway, "provider_stream_time_to_first_result_seconds_count", **labels) == first + 1
    assert sample(gateway, "provider_stream_sessions_active", **labels) == 0
    assert in_flight(gateway, "deepgram") == 0


async def test_characters_are_counted_for_speech(gateway: Gateway) -> None:
    labels = {"provider": "sarvam", "operation": "tts"}
    before = sample(gateway, "provider_client_characters_total", **labels) or 0
    await clients.sarvam_speech(gateway.url, "namaste dost")
    # Counted when the session ends, which can come after the SDK's client has returned.
    await wait_until_async(lambda: sample(gateway, "provider_client_characters_total", **labels)
                           == before + len("namaste dost"), 5, "the session's characters to be counted")
