"""Sarvam routes over HTTP: success bodies, error bodies, audio lengths."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import pytest

from app.simulator.audio import synth_wav
from tests.simulator.helpers import SARVAM, make_mp3, wav_rate, wav_seconds

TRANSLATE = "/_sim/sarvam/translate"
TTS = "/_sim/sarvam/text-to-speech"
TTS_STREAM = "/_sim/sarvam/text-to-speech/stream"
STT = "/_sim/sarvam/speech-to-text"


def assert_sarvam_error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert error["request_id"]
    message: str = error["message"]
    assert message
    return message


def test_translate_phrase_and_fallback(client: httpx.Client) -> None:
    body = {"input": "Thank you", "source_language_code": "en-IN", "target_language_code": "hi-IN"}
    response = client.post(TRANSLATE, json=body, headers=SARVAM)
    assert response.status_code == 200
    data = response.json()
    assert data["translated_text"] == "धन्यवाद"
    assert data["source_language_code"] == "en-IN"
    assert data["request_id"]

    body = {
        "input": "The train leaves at nine",
        "source_language_code": "en-IN",
        "target_language_code": "ta-IN",
    }
    assert client.post(TRANSLATE, json=body, headers=SARVAM).json()["translated_text"] == (
        "[ta-IN] The train leaves at nine"
    )


def test_translate_is_deterministic(client: httpx.Client) -> None:
    body = {
        "input": "Some sentence.",
        "source_language_code": "auto",
        "target_language_code": "bn-IN",
        "mode": "formal",
    }
    first = client.post(TRANSLATE, json=body, headers=SARVAM).json()
    second = client.post(TRANSLATE, json=body, headers=SARVAM).json()
    assert first["translated_text"] == second["translated_text"]
    assert first["request_id"] != second["request_id"]


@pytest.mark.parametrize(("text", "language"), [("Hello", "en-IN"), ("नमस्ते", "hi-IN"), ("வணக்கம்", "ta-IN")])
def test_translate_auto_detects_the_source(client: httpx.Client, text: str, language: str) -> None:
    body = {"input": text, "source_language_code": "auto", "target_language_code": "gu-IN"}
    assert client.post(TRANSLATE, json=body, headers=SARVAM).json()["source_language_code"] == language


def test_translate_to_english(client: httpx.Client) -> None:
    body = {"input": "नमस्ते", "source_language_code": "auto", "target_language_code": "en-IN"}
    assert client.post(TRANSLATE, json=body, headers=SARVAM).json()["translated_text"] == "Hello"


def test_missing_key_is_403_invalid_api_key_error(client: httpx.Client) -> None:
    body = {"input": "Hello", "source_language_code": "en-IN", "target_language_code": "hi-IN"}
    assert_sarvam_error(client.post(TRANSLATE, json=body), 403, "invalid_api_key_error")
    assert_sarvam_error(
        client.post(TRANSLATE, json=body, headers={"api-subscription-key": ""}), 403, "invalid_api_key_error"
    )
    assert_sarvam_error(
        client.post(TTS, json={"text": "x", "language_code": "hi-IN"}), 403, "invalid_api_key_error"
    )
    files = {"file": ("a.wav", synth_wav(1, 16000), "audio/wav")}
    assert_sarvam_error(client.post(STT, files=files), 403, "invalid_api_key_error")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"source_language_code": "en-IN", "target_language_code": "hi-IN"}, "input"),
        ({"input": "", "source_language_code": "en-IN", "target_language_code": "hi-IN"}, "input"),
        ({"input": "x" * 2001, "source_language_code": "en-IN", "target_language_code": "hi-IN"}, "input"),
        (
            {"input": "Hello", "source_language_code": "en-IN", "target_language_code": "xx-IN"},
            "target_language_code",
        ),
        (
            {"input": "Hello", "source_language_code": "english", "target_language_code": "hi-IN"},
            "source_language_code",
        ),
        ({"input": "Hello", "target_language_code": "hi-IN"}, "source_language_code"),
        ({"input": 5, "source_language_code": "en-IN", "target_language_code": "hi-IN"}, "input"),
    ],
)
def test_translate_rejects_bad_requests(client: httpx.Client, body: dict[str, object], field: str) -> None:
    message = assert_sarvam_error(
        client.post(TRANSLATE, json=body, headers=SARVAM), 400, "invalid_request_error"
    )
    assert field in message


def test_translate_rejects_a_body_that_is_not_json(client: httpx.Client) -> None:
    response = client.post(
        TRANSLATE, content=b"{oops", headers={**SARVAM, "content-type": "application/json"}
    )
    assert_sarvam_error(response, 400, "invalid_request_error")


def tts_audio(client: httpx.Client, **body: object) -> bytes:
    response = client.post(TTS, json=body, headers=SARVAM)
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["request_id"]
    assert len(data["audios"]) == 1
    return base64.b64decode(data["audios"][0])


def test_tts_returns_a_wav_whose_length_follows_the_text(client: httpx.Client) -> None:
    short = tts_audio(client, text="Hi", language_code="hi-IN")
    long = tts_audio(client, text="नमस्ते, आप कैसे हैं? " * 5, target_language_code="hi-IN", speaker="anushka")
    assert wav_seconds(short) == pytest.approx(0.5)  # the minimum
    assert wav_seconds(long) == pytest.approx(len("नमस्ते, आप कैसे हैं? " * 5) * 0.06, abs=0.001)
    assert wav_rate(short) == 22050


def test_tts_honours_the_sample_rate_and_is_deterministic(client: httpx.Client) -> None:
    first = tts_audio(
        client, text="Hello there", language_code="en-IN", speech_sample_rate=8000, model="bulbul:v2"
    )
    assert wav_rate(first) == 8000
    assert first == tts_audio(client, text="Hello there", language_code="en-IN", speech_sample_rate=8000)


def test_tts_legacy_inputs_give_one_audio_each(client: httpx.Client) -> None:
    response = client.post(
        TTS, json={"inputs": ["One", "Two two two two two"], "target_language_code": "hi-IN"}, headers=SARVAM
    )
    audios = [base64.b64decode(audio) for audio in response.json()["audios"]]
    assert [round(wav_seconds(audio), 2) for audio in audios] == [0.5, 1.14]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"language_code": "hi-IN"}, "text"),
        ({"text": "Hello"}, "language_code"),
        ({"text": "Hello", "language_code": "fr-FR"}, "language_code"),
        ({"text": "Hello", "target_language_code": "fr-FR"}, "target_language_code"),
        ({"text": "Hello", "language_code": "hi-IN", "speech_sample_rate": 12345}, "speech_sample_rate"),
        ({"text": "Hello", "language_code": "hi-IN", "output_audio_codec": "mp3"}, "output_audio_codec"),
        ({"text": "x" * 2501, "language_code": "hi-IN"}, "text"),
    ],
)
def test_tts_rejects_bad_requests(client: httpx.Client, body: dict[str, object], field: str) -> None:
    for path in (TTS, TTS_STREAM):
        message = assert_sarvam_error(
            client.post(path, json=body, headers=SARVAM), 400, "invalid_request_error"
        )
        assert field in message


def test_tts_stream_sends_a_wav_in_several_chunks(client: httpx.Client) -> None:
    text = "A somewhat longer sentence to speak."
    with client.stream(
        "POST", TTS_STREAM, json={"text": text, "language_code": "en-IN"}, headers=SARVAM
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "audio/wav"
        chunks = list(response.iter_raw())
    audio = b"".join(chunks)
    assert len(chunks) >= 3
    assert wav_seconds(audio) == pytest.approx(len(text) * 0.06, abs=0.001)
    assert audio == tts_audio(client, text=text, language_code="en-IN")


def test_stt_transcribes_wav_and_mp3(client: httpx.Client, tmp_path: Path) -> None:
    wav = synth_wav(1.5, 16000)
    response = client.post(
        STT,
        files={"file": ("a.wav", wav, "audio/wav")},
        data={"model": "saarika:v2.5", "language_code": "hi-IN"},
        headers=SARVAM,
    )
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["transcript"] == "नमस्ते, यह अपलोड किए गए ऑडियो का नकली प्रतिलेख है।"
    assert data["language_code"] == "hi-IN"
    assert data["timestamps"] is None and data["diarized_transcript"] is None
    assert data["request_id"]

    mp3 = make_mp3(tmp_path, 2.0)
    response = client.post(STT, files={"file": ("a.mp3", mp3, "audio/mpeg")}, headers=SARVAM)
    assert response.status_code == 200, response.text
    assert response.json()["language_code"] == "hi-IN"  # "unknown" (the default) is detected
    assert response.json()["transcript"]


def test_stt_rejects_corrupt_audio_and_missing_file(client: httpx.Client) -> None:
    files = {"file": ("a.wav", b"definitely not audio" * 10, "audio/wav")}
    assert_sarvam_error(client.post(STT, files=files, headers=SARVAM), 400, "invalid_request_error")
    message = assert_sarvam_error(
        client.post(STT, data={"model": "saarika:v2.5"}, headers=SARVAM), 400, "invalid_request_error"
    )
    assert "file" in message
    files = {"file": ("a.wav", synth_wav(1, 16000), "audio/wav")}
    message = assert_sarvam_error(
        client.post(STT, files=files, data={"language_code": "xx"}, headers=SARVAM),
        400,
        "invalid_request_error",
    )
    assert "language_code" in message
