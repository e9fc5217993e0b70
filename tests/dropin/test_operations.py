"""Every drop-in operation with the official SDKs, pointed at the gateway by base URL only and
carrying the gateway client key as their own credential: results as the provider sent them, fields
the gateway does not know passed on, streams relayed as they arrive, unknown paths refused in the
provider's own shape."""

from __future__ import annotations

import base64
import io
import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from deepgram.core.api_error import ApiError as DeepgramApiError
from litestar import Litestar, Request, post
from litestar.response import Stream
from sarvamai.core.api_error import ApiError as SarvamApiError
from sarvamai.errors import BadRequestError as SarvamBadRequestError

from app.simulator.audio import synth_wav
from tests.gateway import Gateway, running_gateway
from tests.providers.test_bulkhead import sample
from tests.simulator.helpers import wav_rate, wav_seconds
from tests.support import live_server

from .sdks import CLIENT_KEY, NO_RETRIES, deepgram_sdk, openai_sdk, sarvam_sdk

ENV = {"GATEWAY_API_KEYS": CLIENT_KEY, **{f"{p}_RATE_LIMIT": "100000" for p in ("SARVAM", "DEEPGRAM", "OPENAI")}}


@pytest.fixture(scope="module")
def gw() -> Iterator[Gateway]:
    with running_gateway(ENV) as gateway:
        yield gateway


@pytest.fixture(autouse=True)
def fresh(gw: Gateway) -> Iterator[None]:
    gw.clear_faults()
    gw.clear_upstream_requests()
    yield
    gw.clear_faults()


def operations(gw: Gateway) -> list[tuple[str, str, str]]:
    return [(r["provider"], r["operation"], r["path"]) for r in gw.upstream_requests()]


def test_openai_chat_and_embeddings(gw: Gateway) -> None:
    sdk = openai_sdk(gw.url)
    completion = sdk.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Say hello"}])
    assert completion.choices[0].message.content == "Simulated reply to: Say hello"
    assert completion.usage is not None and completion.usage.total_tokens == 15
    # The SDK asks for base64 and decodes it; dimensions is the provider's to honour.
    embeddings = sdk.embeddings.create(model="text-embedding-3-large", input=["hello world", "bye"], dimensions=256)
    assert [len(item.embedding) for item in embeddings.data] == [256, 256]
    assert operations(gw) == [("openai", "chat", "/_sim/openai/v1/chat/completions"),
                              ("openai", "embeddings", "/_sim/openai/v1/embeddings")]


def test_openai_chat_stream_arrives_as_it_is_produced(gw: Gateway) -> None:
    gw.fault("openai", operation="chat", chunk_delay_ms=150)
    stream = openai_sdk(gw.url).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Say hello"}], stream=True,
        stream_options={"include_usage": True})
    started = time.monotonic()
    arrivals, chunks = [], []
    for chunk in stream:
        arrivals.append(time.monotonic() - started)
        chunks.append(chunk)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Simulated reply to: Say hello"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 6
    assert arrivals[0] < 0.3 < arrivals[-1] - 0.6  # the first event did not wait for the last
    assert sample(gw, "provider_client_time_to_first_byte_seconds_count", provider="openai", operation="chat") == 1


def test_sarvam_translate_with_fields_the_gateway_does_not_know(gw: Gateway) -> None:
    sdk = sarvam_sdk(gw.url)
    result = sdk.text.translate(input="Good morning", source_language_code="auto", target_language_code="hi-IN",
                                speaker_gender="Female", mode="formal", model="mayura:v1")
    assert (result.translated_text, result.source_language_code) == ("सुप्रभात", "en-IN")
    assert result.request_id and result.request_id.startswith(time.strftime("%Y"))  # Sarvam's own answer
    # A field the gateway does not check reaches Sarvam, whose own refusal comes back as it sent it.
    with pytest.raises(SarvamBadRequestError) as refused:
        sdk.text.translate(input="Hi", source_language_code="en-IN", target_language_code="hi-IN",
                           model="no-such-model", request_options=NO_RETRIES)
    assert "model" in refused.value.body["error"]["message"]
    assert refused.value.headers is not None and refused.value.headers["x-gateway-error-type"] == "upstream_4xx"
    assert operations(gw) == [("sarvam", "translate", "/_sim/sarvam/translate")] * 2


def test_sarvam_text_to_speech_plain_and_streamed(gw: Gateway) -> None:
    sdk = sarvam_sdk(gw.url)
    spoken = sdk.text_to_speech.convert(text="Namaste duniya", language_code="hi-IN", speech_sample_rate=16000)
    (audio,) = spoken.audios
    assert wav_rate(base64.b64decode(audio)) == 16000
    assert wav_seconds(base64.b64decode(audio)) == pytest.approx(len("Namaste duniya") * 0.06)
    gw.fault("sarvam", operation="tts", chunk_delay_ms=100)
    text = "A streamed sentence from Sarvam, long enough for several chunks."
    started, arrivals = time.monotonic(), []
    parts = []
    for part in sdk.text_to_speech.convert_stream(text=text, language_code="en-IN", speech_sample_rate=8000):
        arrivals.append(time.monotonic() - started)
        parts.append(part)
    wav = b"".join(parts)
    assert wav_rate(wav) == 8000 and wav_seconds(wav) == pytest.approx(len(text) * 0.06)
    assert len(arrivals) > 3 and arrivals[0] < arrivals[-1] - 0.5
    assert sample(gw, "provider_client_time_to_first_byte_seconds_count", provider="sarvam", operation="tts") == 1
    assert sample(gw, "provider_client_audio_duration_seconds_total", provider="sarvam",
                  operation="tts") == pytest.approx(len("Namaste duniya") * 0.06 + len(text) * 0.06, abs=0.01)
    assert operations(gw) == [("sarvam", "tts", "/_sim/sarvam/text-to-speech"),
                              ("sarvam", "tts", "/_sim/sarvam/text-to-speech/stream")]


def test_sarvam_speech_to_text(gw: Gateway) -> None:
    sdk = sarvam_sdk(gw.url)
    upload = ("clip.wav", io.BytesIO(synth_wav(1.2, 16000)), "audio/wav")
    result = sdk.speech_to_text.transcribe(file=upload, model="saaras:v3", language_code="ta-IN")
    assert result.transcript == "வணக்கம், இது பதிவேற்றிய ஒலியின் மாதிரி எழுத்துப்படி."
    # Raw bytes (labelled application/octet-stream by the SDK) and Sarvam's own "unknown" language.
    detected = sdk.speech_to_text.transcribe(file=synth_wav(0.8, 8000), language_code="unknown")
    assert (detected.language_code, detected.language_probability) == ("hi-IN", 0.98)
    assert operations(gw) == [("sarvam", "stt", "/_sim/sarvam/speech-to-text")] * 2


def test_deepgram_listen_and_speak(gw: Gateway) -> None:
    sdk = deepgram_sdk(gw.url)
    audio = synth_wav(2.25, 16000)
    smart = sdk.listen.v1.media.transcribe_file(request=audio, model="nova-3", language="en", smart_format=True)
    plain = sdk.listen.v1.media.transcribe_file(request=audio, model="nova-3", language="en")
    assert smart.metadata.duration == pytest.approx(2.25)
    alternatives = smart.results.channels[0].alternatives
    assert alternatives is not None
    assert alternatives[0].transcript == "Hello, this is a simulated transcript of the uploaded audio."
    # The query is Deepgram's, passed on as sent: without smart_format there is no punctuation.
    assert plain.results.channels[0].alternatives[0].transcript == (
        "hello this is a simulated transcript of the uploaded audio")
    text = "Hello from Deepgram's simulated voice."
    wav = b"".join(sdk.speak.v1.audio.generate(text=text, model="aura-2-thalia-en", encoding="linear16",
                                               container="wav", sample_rate=16000))
    assert wav_rate(wav) == 16000 and wav_seconds(wav) == pytest.approx(len(text) * 0.06)
    assert operations(gw) == [("deepgram", "stt", "/_sim/deepgram/v1/listen")] * 2 + [
        ("deepgram", "tts", "/_sim/deepgram/v1/speak")]


def test_unknown_paths_are_the_providers_own_404(gw: Gateway) -> None:
    with pytest.raises(openai.NotFoundError) as openai_404:
        openai_sdk(gw.url).models.list()
    assert openai_404.value.response.headers["x-gateway-error-type"] == "not_found"
    with pytest.raises(SarvamApiError) as sarvam_404:
        sarvam_sdk(gw.url).text.transliterate(input="namaste", source_language_code="en-IN",
                                              target_language_code="hi-IN", request_options=NO_RETRIES)
    assert sarvam_404.value.status_code == 404
    assert sarvam_404.value.body["error"]["code"] == "not_found_error"
    with pytest.raises(DeepgramApiError) as deepgram_404:
        deepgram_sdk(gw.url).manage.v1.projects.list()
    assert deepgram_404.value.status_code == 404 and deepgram_404.value.body["err_code"] == "NOT_FOUND"
    wrong_method = gw.client.get("/sarvam/translate", headers={"api-subscription-key": CLIENT_KEY})
    assert wrong_method.status_code == 405 and wrong_method.json()["error"]["code"] == "invalid_request_error"
    assert gw.upstream_requests() == []  # not an open proxy


MP3_CHUNKS = [b"ID3\x04" + bytes(60), b"\xff\xfb" + bytes(100), b"\xff\xfb" + bytes(100)]


@post("/text-to-speech/stream", status_code=200)
async def mp3_stream(request: Request[Any, Any, Any]) -> Stream:
    """Sarvam streaming MP3, as it does when asked to (the simulator speaks WAV only)."""
    assert request.headers["api-subscription-key"] == "sarvam-provider-key"
    assert (await request.json())["output_audio_codec"] == "mp3"
    return Stream(iter(MP3_CHUNKS), media_type="audio/mpeg")


def test_another_codec_is_relayed_as_it_comes() -> None:
    with live_server(Litestar([mp3_stream])) as sarvam, running_gateway(
            {"SARVAM_API_KEY": "sarvam-provider-key", "SARVAM_BASE_URL": sarvam.url}) as gw:
        sdk = sarvam_sdk(gw.url)
        audio = b"".join(sdk.text_to_speech.convert_stream(text="hello", language_code="hi-IN",
                                                           output_audio_codec="mp3"))
        assert audio == b"".join(MP3_CHUNKS)
        assert sample(gw, "provider_client_time_to_first_byte_seconds_count", provider="sarvam", operation="tts") == 1
        assert sample(gw, "provider_client_characters_total", provider="sarvam", operation="tts") == len("hello")
        # Its length is not guessed from a WAV formula.
        assert not sample(gw, "provider_client_audio_duration_seconds_total", provider="sarvam", operation="tts")
