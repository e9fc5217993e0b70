"""The official client libraries (openai, sarvamai, deepgram-sdk) work against the simulator, one test per
simulated operation, plus their error classes for injected faults."""

from __future__ import annotations

import base64
import io
import math
from pathlib import Path

import httpx
import openai
import pytest
from deepgram import DeepgramClient
from deepgram.core.api_error import ApiError as DeepgramApiError
from deepgram.environment import DeepgramClientEnvironment
from deepgram.errors.bad_request_error import BadRequestError as DeepgramBadRequestError
from sarvamai import SarvamAI
from sarvamai.environment import SarvamAIEnvironment
from sarvamai.errors import ForbiddenError, InternalServerError, TooManyRequestsError

from app.simulator import SIM_API_KEY
from app.simulator.audio import synth_wav
from tests.simulator.helpers import set_fault, wav_rate, wav_seconds
from tests.support import LiveServer

REPLY = "Simulated reply to: Say hello"


# --- OpenAI ---------------------------------------------------------------------------------------------------------


@pytest.fixture
def openai_client(simulator: LiveServer, client: httpx.Client) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{simulator.url}/_sim/openai/v1", api_key=SIM_API_KEY, max_retries=0)


def test_openai_chat(openai_client: openai.OpenAI) -> None:
    completion = openai_client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Say hello"}]
    )
    assert completion.choices[0].message.content == REPLY
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (9, 6)
    assert completion.usage.total_tokens == 15
    assert completion._request_id is not None and completion._request_id.startswith("req_")


async def test_openai_chat_stream_with_usage(simulator: LiveServer, client: httpx.Client) -> None:
    async with openai.AsyncOpenAI(
        base_url=f"{simulator.url}/_sim/openai/v1", api_key=SIM_API_KEY, max_retries=0
    ) as async_client:
        stream = await async_client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "Say hello"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text == REPLY
    assert [chunk.choices[0].finish_reason for chunk in chunks if chunk.choices][-1] == "stop"
    usage = chunks[-1].usage
    assert usage is not None and chunks[-1].choices == []
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (9, 6, 15)


def test_openai_embeddings_float_and_base64(openai_client: openai.OpenAI) -> None:
    # Without encoding_format the SDK asks for base64 and decodes it to floats itself.
    decoded = openai_client.embeddings.create(model="text-embedding-3-small", input=["hello world", "bye"])
    as_floats = openai_client.embeddings.create(
        model="text-embedding-3-small", input=["hello world", "bye"], encoding_format="float"
    )
    assert [len(item.embedding) for item in decoded.data] == [1536, 1536]
    for left, right in zip(decoded.data, as_floats.data, strict=True):
        assert left.embedding == pytest.approx(right.embedding, abs=1e-7)
        assert math.isclose(sum(x * x for x in right.embedding), 1.0, rel_tol=1e-9)
    assert decoded.usage.prompt_tokens == 3
    large = openai_client.embeddings.create(model="text-embedding-3-large", input="hi", dimensions=512)
    assert len(large.data[0].embedding) == 512


def test_openai_models(openai_client: openai.OpenAI) -> None:
    ids = [model.id for model in openai_client.models.list()]
    assert "gpt-4o-mini" in ids and "text-embedding-3-large" in ids


@pytest.mark.parametrize(
    ("status", "error_class"),
    [(429, openai.RateLimitError), (500, openai.InternalServerError), (401, openai.AuthenticationError)],
)
def test_openai_errors_from_injected_faults(
    openai_client: openai.OpenAI, client: httpx.Client, status: int, error_class: type[openai.APIStatusError]
) -> None:
    set_fault(client, provider="openai", operation="chat", error_rate=1, status_code=status, retry_after=3)
    with pytest.raises(error_class) as caught:
        openai_client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
        )
    assert caught.value.status_code == status
    if status == 429:
        assert caught.value.code == "rate_limit_exceeded"
        assert caught.value.response.headers["retry-after"] == "3"


def test_openai_rejects_requests_without_a_bearer_key(simulator: LiveServer, client: httpx.Client) -> None:
    wrong = openai.OpenAI(
        base_url=f"{simulator.url}/_sim/openai/v1",
        api_key=SIM_API_KEY,
        max_retries=0,
        default_headers={"Authorization": "Basic c2ltOmtleQ=="},
    )
    with pytest.raises(openai.AuthenticationError) as caught:
        wrong.models.list()
    assert caught.value.code == "invalid_api_key"


# --- Sarvam ---------------------------------------------------------------------------------------------------------


def sarvam_environment(simulator: LiveServer) -> SarvamAIEnvironment:
    base = f"{simulator.url}/_sim/sarvam"
    return SarvamAIEnvironment(
        base=base, creative=f"{base}/dubbing", production=base.replace("http", "ws", 1)
    )


@pytest.fixture
def sarvam(simulator: LiveServer, client: httpx.Client) -> SarvamAI:
    return SarvamAI(api_subscription_key=SIM_API_KEY, environment=sarvam_environment(simulator))


NO_RETRIES = {"max_retries": 0}


def test_sarvam_translate(sarvam: SarvamAI) -> None:
    result = sarvam.text.translate(
        input="Good morning", source_language_code="auto", target_language_code="hi-IN"
    )
    assert result.translated_text == "सुप्रभात"
    assert result.source_language_code == "en-IN"
    assert result.request_id


def test_sarvam_text_to_speech(sarvam: SarvamAI) -> None:
    result = sarvam.text_to_speech.convert(
        text="Namaste duniya",
        language_code="hi-IN",
        speaker="anushka",
        model="bulbul:v2",
        speech_sample_rate=16000,
    )
    (audio,) = result.audios
    wav = base64.b64decode(audio)
    assert wav_rate(wav) == 16000
    assert wav_seconds(wav) == pytest.approx(len("Namaste duniya") * 0.06)


def test_sarvam_text_to_speech_stream(sarvam: SarvamAI) -> None:
    text = "A streamed sentence from Sarvam."
    wav = b"".join(
        sarvam.text_to_speech.convert_stream(text=text, language_code="en-IN", output_audio_codec="wav")
    )
    assert wav_seconds(wav) == pytest.approx(len(text) * 0.06)
    assert wav_rate(wav) == 22050


def test_sarvam_speech_to_text(sarvam: SarvamAI) -> None:
    upload = ("clip.wav", io.BytesIO(synth_wav(1.2, 16000)), "audio/wav")
    result = sarvam.speech_to_text.transcribe(file=upload, model="saaras:v3", language_code="ta-IN")
    assert result.transcript == "வணக்கம், இது பதிவேற்றிய ஒலியின் மாதிரி எழுத்துப்படி."
    assert result.language_code == "ta-IN"


def test_sarvam_speech_to_text_from_a_file(sarvam: SarvamAI, tmp_path: Path) -> None:
    path = tmp_path / "clip.wav"
    path.write_bytes(synth_wav(0.8, 8000))
    with path.open("rb") as handle:
        result = sarvam.speech_to_text.transcribe(file=handle)
    assert result.language_code == "hi-IN"
    assert result.transcript.startswith("नमस्ते")


def test_sarvam_errors_from_injected_faults(sarvam: SarvamAI, client: httpx.Client) -> None:
    set_fault(client, provider="sarvam", operation="translate", error_rate=1, status_code=429)
    with pytest.raises(TooManyRequestsError) as too_many:
        sarvam.text.translate(
            input="Hi", source_language_code="en-IN", target_language_code="hi-IN", request_options=NO_RETRIES
        )
    assert too_many.value.body["error"]["code"] == "rate_limit_exceeded_error"
    set_fault(client, provider="sarvam", operation="tts", error_rate=1, status_code=500)
    with pytest.raises(InternalServerError) as server_error:
        sarvam.text_to_speech.convert(text="Hi", language_code="hi-IN", request_options=NO_RETRIES)
    assert server_error.value.body["error"]["code"] == "internal_server_error"


def test_sarvam_client_retries_through_an_intermittent_fault(sarvam: SarvamAI, client: httpx.Client) -> None:
    set_fault(
        client, provider="sarvam", operation="translate", error_rate=0.5, status_code=429, retry_after=0
    )
    first = sarvam.text.translate(input="Hello", source_language_code="en-IN", target_language_code="hi-IN")
    second = sarvam.text.translate(input="Hello", source_language_code="en-IN", target_language_code="hi-IN")
    assert first.translated_text == second.translated_text == "नमस्ते"
    recorded = client.get("/_sim/requests", params={"provider": "sarvam"}).json()
    assert len(recorded) == 3  # ok, 429 then the client's retry


def test_sarvam_rejects_a_missing_key(simulator: LiveServer, client: httpx.Client) -> None:
    keyless = SarvamAI(api_subscription_key="", environment=sarvam_environment(simulator))
    with pytest.raises(ForbiddenError) as caught:
        keyless.text.translate(input="Hi", source_language_code="en-IN", target_language_code="hi-IN")
    assert caught.value.body["error"]["code"] == "invalid_api_key_error"


# --- Deepgram -------------------------------------------------------------------------------------------------------


@pytest.fixture
def deepgram(simulator: LiveServer, client: httpx.Client) -> DeepgramClient:
    base = f"{simulator.url}/_sim/deepgram"
    ws = base.replace("http", "ws", 1)
    environment = DeepgramClientEnvironment(base=base, production=ws, agent=ws, agent_rest=base)
    return DeepgramClient(api_key=SIM_API_KEY, environment=environment, max_retries=0)


def test_deepgram_transcribe_file(deepgram: DeepgramClient) -> None:
    response = deepgram.listen.v1.media.transcribe_file(
        request=synth_wav(2.25, 16000), model="nova-3", language="en", smart_format=True
    )
    assert response.metadata.duration == pytest.approx(2.25)
    assert response.metadata.channels == 1
    alternatives = response.results.channels[0].alternatives
    assert alternatives is not None
    assert alternatives[0].transcript == "Hello, this is a simulated transcript of the uploaded audio."
    assert alternatives[0].words is not None and alternatives[0].words[-1].end == pytest.approx(2.25)


def test_deepgram_speak(deepgram: DeepgramClient) -> None:
    text = "Hello from Deepgram's simulated voice."
    wav = b"".join(
        deepgram.speak.v1.audio.generate(
            text=text, model="aura-2-thalia-en", encoding="linear16", container="wav", sample_rate=24000
        )
    )
    assert wav_rate(wav) == 24000
    assert wav_seconds(wav) == pytest.approx(len(text) * 0.06)


def test_deepgram_projects(deepgram: DeepgramClient) -> None:
    projects = deepgram.manage.v1.projects.list().projects
    assert projects is not None and projects[0].name == "Simulated project"


def test_deepgram_errors(deepgram: DeepgramClient, client: httpx.Client) -> None:
    with pytest.raises(DeepgramBadRequestError) as bad:
        deepgram.listen.v1.media.transcribe_file(request=b"not audio at all" * 10)
    assert bad.value.body["err_msg"] == "Bad Request: failed to process audio: corrupt or unsupported data"
    set_fault(client, provider="deepgram", operation="stt", error_rate=1, status_code=429, retry_after=2)
    with pytest.raises(DeepgramApiError) as limited:
        deepgram.listen.v1.media.transcribe_file(request=synth_wav(0.5, 8000))
    assert limited.value.status_code == 429
    assert limited.value.body["err_code"] == "TOO_MANY_REQUESTS"
    assert limited.value.headers is not None and limited.value.headers["retry-after"] == "2"
