"""Deepgram routes over HTTP: pre-recorded transcription, speech, projects, and their errors."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from app.simulator.audio import synth_wav
from tests.simulator.helpers import DEEPGRAM, make_mp3, wav_rate, wav_seconds

LISTEN = "/_sim/deepgram/v1/listen"
SPEAK = "/_sim/deepgram/v1/speak"
PROJECTS = "/_sim/deepgram/v1/projects"


def assert_deepgram_error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"err_code", "err_msg", "request_id"}
    assert body["err_code"] == code
    message: str = body["err_msg"]
    return message


def test_listen_returns_prerecorded_json_with_the_real_duration(client: httpx.Client) -> None:
    wav = synth_wav(2.75, 16000)
    response = client.post(
        f"{LISTEN}?model=nova-3&language=en&smart_format=true",
        content=wav,
        headers={**DEEPGRAM, "content-type": "audio/wav"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    metadata = body["metadata"]
    assert metadata["duration"] == pytest.approx(2.75)
    assert metadata["channels"] == 1
    assert len(metadata["sha256"]) == 64
    assert metadata["request_id"] == response.headers["dg-request-id"]
    assert metadata["model_info"][metadata["models"][0]]["arch"] == "nova-3"
    alternative = body["results"]["channels"][0]["alternatives"][0]
    assert alternative["transcript"] == "Hello, this is a simulated transcript of the uploaded audio."
    assert 0 < alternative["confidence"] <= 1
    words = alternative["words"]
    assert [w["punctuated_word"] for w in words] == alternative["transcript"].split()
    assert words[0]["word"] == "hello" and words[0]["start"] == 0
    assert words[-1]["end"] == pytest.approx(2.75)


def test_listen_without_smart_format_is_lowercase_and_unpunctuated(client: httpx.Client) -> None:
    response = client.post(
        f"{LISTEN}?language=hi",
        content=synth_wav(1, 8000),
        headers={**DEEPGRAM, "content-type": "application/octet-stream"},
    )
    transcript = response.json()["results"]["channels"][0]["alternatives"][0]["transcript"]
    assert transcript == "नमस्ते यह अपलोड किए गए ऑडियो का नकली प्रतिलेख है"


def test_listen_reads_mp3_duration(client: httpx.Client, tmp_path: Path) -> None:
    response = client.post(
        LISTEN, content=make_mp3(tmp_path, 1.5), headers={**DEEPGRAM, "content-type": "audio/mpeg"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["metadata"]["duration"] == pytest.approx(1.5, abs=0.15)


@pytest.mark.parametrize("audio", [b"", b"corrupt audio bytes" * 50], ids=["empty", "corrupt"])
def test_listen_rejects_unreadable_audio(client: httpx.Client, audio: bytes) -> None:
    response = client.post(LISTEN, content=audio, headers={**DEEPGRAM, "content-type": "audio/wav"})
    message = assert_deepgram_error(response, 400, "Bad Request")
    assert message == "Bad Request: failed to process audio: corrupt or unsupported data"


def test_listen_rejects_remote_urls(client: httpx.Client) -> None:
    response = client.post(LISTEN, json={"url": "https://example.com/a.wav"}, headers=DEEPGRAM)
    assert_deepgram_error(response, 400, "Bad Request")


@pytest.mark.parametrize("authorization", [None, "", "Token", "Basic abc", "Tokenabc"])
def test_bad_credentials_are_401_invalid_auth(client: httpx.Client, authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    for response in (
        client.post(LISTEN, content=synth_wav(1, 8000), headers={**headers, "content-type": "audio/wav"}),
        client.post(SPEAK, json={"text": "Hello"}, headers=headers),
        client.get(PROJECTS, headers=headers),
    ):
        assert assert_deepgram_error(response, 401, "INVALID_AUTH") == "Invalid credentials."


def test_bearer_tokens_are_accepted(client: httpx.Client) -> None:
    assert client.get(PROJECTS, headers={"Authorization": "bearer some-token"}).status_code == 200


def test_speak_streams_a_wav_with_deepgram_headers(client: httpx.Client) -> None:
    text = "Hello from the simulated Deepgram voice."
    with client.stream(
        "POST",
        f"{SPEAK}?model=aura-2-andromeda-en&encoding=linear16&container=wav",
        json={"text": text},
        headers=DEEPGRAM,
    ) as response:
        assert response.status_code == 200
        chunks = list(response.iter_raw())
    assert response.headers["content-type"] == "audio/wav"
    assert response.headers["dg-model-name"] == "aura-2-andromeda-en"
    assert response.headers["dg-char-count"] == str(len(text))
    assert response.headers["dg-request-id"]
    audio = b"".join(chunks)
    assert len(chunks) >= 3
    assert wav_rate(audio) == 24000
    assert wav_seconds(audio) == pytest.approx(len(text) * 0.06, abs=0.001)


def test_speak_length_grows_with_text_and_honours_sample_rate(client: httpx.Client) -> None:
    short = client.post(f"{SPEAK}?sample_rate=16000", json={"text": "Hi"}, headers=DEEPGRAM).content
    long = client.post(f"{SPEAK}?sample_rate=16000", json={"text": "Hi " * 40}, headers=DEEPGRAM).content
    assert wav_rate(short) == wav_rate(long) == 16000
    assert wav_seconds(short) == pytest.approx(0.5)
    assert wav_seconds(long) > 7


@pytest.mark.parametrize(
    ("query", "body"),
    [
        ("", {}),
        ("", {"text": ""}),
        ("", {"text": "x" * 2001}),
        ("?encoding=mp3", {"text": "Hello"}),
        ("?sample_rate=11025", {"text": "Hello"}),
    ],
)
def test_speak_rejects_bad_requests(client: httpx.Client, query: str, body: dict[str, object]) -> None:
    assert_deepgram_error(client.post(f"{SPEAK}{query}", json=body, headers=DEEPGRAM), 400, "Bad Request")


def test_projects(client: httpx.Client) -> None:
    response = client.get(PROJECTS, headers=DEEPGRAM)
    assert response.status_code == 200
    (project,) = response.json()["projects"]
    assert project["name"] == "Simulated project"
    assert project["project_id"]
