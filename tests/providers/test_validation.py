"""Invalid input gets its 4xx problem answer and never reaches a provider."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.audio import mp3, wav
from tests.gateway import Gateway, running_gateway
from tests.providers.test_bulkhead import sample
from tests.providers.test_resilience import assert_problem


@pytest.fixture(scope="module")
def gw() -> Iterator[Gateway]:
    env = {"SARVAM_MAX_TEXT_LENGTH": "50", "SARVAM_MAX_AUDIO_SIZE_MB": "0.2",
           "DEEPGRAM_MAX_AUDIO_SIZE_MB": "0.2", "SARVAM_MAX_AUDIO_DURATION_SEC": "2",
           "DEEPGRAM_MAX_AUDIO_DURATION_SEC": "2", "OPENAI_MAX_TEXT_LENGTH": "100"}
    with running_gateway(env) as gateway:
        yield gateway


@pytest.fixture(autouse=True)
def no_upstream_calls(gw: Gateway) -> Iterator[None]:
    gw.clear_upstream_requests()
    yield
    assert gw.upstream_requests() == [], "invalid input reached a provider"


def stt(gw: Gateway, data: bytes, content_type: str, language: str = "hi-IN") -> httpx.Response:
    return gw.client.post("/v1/stt", files={"file": ("a", data, content_type)}, data={"language_code": language})


def refusals(gw: Gateway, provider: str, operation: str) -> float:
    """Invalid-input refusals counted by the door so far (``/metrics``)."""
    return sample(gw, "provider_client_rejections_total", provider=provider, operation=operation,
                  reason="invalid_input") or 0.0


def test_oversized_text(gw: Gateway) -> None:
    body = assert_problem(gw.translate("x" * 51), 422, "invalid_input")
    assert "51 characters" in str(body["detail"])


def test_unknown_language_codes(gw: Gateway) -> None:
    assert "xx-YY" in str(assert_problem(gw.translate(target="xx-YY"), 422, "invalid_input")["detail"])
    before = refusals(gw, "sarvam", "tts"), refusals(gw, "sarvam", "stt")
    tts = gw.client.post("/v1/tts", json={"text": "hello", "language_code": "zz-ZZ"})
    assert_problem(tts, 422, "invalid_input")
    assert_problem(stt(gw, wav(0.5), "audio/wav", "qq-QQ"), 422, "invalid_input")
    # Refused by language routing, before a provider was chosen: counted under the first candidate.
    assert (refusals(gw, "sarvam", "tts"), refusals(gw, "sarvam", "stt")) == (before[0] + 1, before[1] + 1)


def test_malformed_json_and_wrong_shapes(gw: Gateway) -> None:
    before = refusals(gw, "sarvam", "translate"), refusals(gw, "openai", "chat")
    broken = gw.client.post("/v1/translate", content=b'{"input": "hi",', headers={"content-type": "application/json"})
    assert_problem(broken, 400, "invalid_input")
    missing = gw.client.post("/v1/translate", json={"input": "hi"})
    assert_problem(missing, 400, "invalid_input")
    chat = gw.client.post("/v1/chat/completions", content=b"[1,2", headers={"content-type": "application/json"})
    assert_problem(chat, 400, "invalid_input")
    no_messages = gw.client.post("/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": []})
    assert_problem(no_messages, 422, "invalid_input")
    long_chat = gw.client.post("/v1/chat/completions",
                               json={"messages": [{"role": "user", "content": "y" * 101}]})
    assert_problem(long_chat, 422, "invalid_input")
    # Refused while the body was read (two by Litestar's schema, one by ours) or inside the door: each once.
    assert (refusals(gw, "sarvam", "translate"), refusals(gw, "openai", "chat")) == (before[0] + 2, before[1] + 3)


def test_oversized_audio_is_413(gw: Gateway) -> None:
    before = refusals(gw, "sarvam", "stt"), refusals(gw, "deepgram", "stt")
    assert_problem(stt(gw, wav(3.0, rate=48000), "audio/wav"), 413, "invalid_input")
    named = gw.client.post("/v1/stt", files={"file": ("a", wav(3.0, rate=48000), "audio/wav")},
                           data={"language_code": "hi-IN", "provider": "deepgram"})
    assert_problem(named, 413, "invalid_input")
    # Audio checks are refusals too: under the first candidate, or the provider the caller named.
    assert (refusals(gw, "sarvam", "stt"), refusals(gw, "deepgram", "stt")) == (before[0] + 1, before[1] + 1)


def test_over_long_audio_wav_and_mp3(gw: Gateway, tmp_path: Path) -> None:
    assert "3.0 s" in str(assert_problem(stt(gw, wav(3.0, rate=8000), "audio/wav"), 422, "invalid_input")["detail"])
    assert_problem(stt(gw, mp3(3.0, tmp_path), "audio/mpeg"), 422, "invalid_input")


def test_corrupt_audio(gw: Gateway, tmp_path: Path) -> None:
    good_wav = wav(1.0, rate=8000)
    assert_problem(stt(gw, b"RIFF" + b"\x00" * 200, "audio/wav"), 422, "invalid_input")
    assert_problem(stt(gw, good_wav[:30], "audio/wav"), 422, "invalid_input")
    assert_problem(stt(gw, b"\xff\xfb" + bytes(range(256)) * 3, "audio/mpeg"), 422, "invalid_input")
    assert_problem(stt(gw, b"hello, not audio at all", "audio/mpeg"), 422, "invalid_input")


def test_wrong_content_type_is_415(gw: Gateway) -> None:
    before = refusals(gw, "sarvam", "translate"), refusals(gw, "openai", "chat"), refusals(gw, "sarvam", "stt")
    text = gw.client.post("/v1/translate", content=b"hello", headers={"content-type": "text/plain"})
    assert "text/plain" in str(assert_problem(text, 415, "invalid_input")["detail"])
    form = gw.client.post("/v1/chat/completions", data={"messages": "x"})
    assert_problem(form, 415, "invalid_input")
    assert_problem(stt(gw, wav(0.5), "text/plain"), 415, "invalid_input")
    assert_problem(stt(gw, wav(0.5), "application/octet-stream"), 415, "invalid_input")
    no_form = gw.client.post("/v1/stt", content=b"audio", headers={"content-type": "audio/wav"})
    assert_problem(no_form, 415, "invalid_input")
    after = refusals(gw, "sarvam", "translate"), refusals(gw, "openai", "chat"), refusals(gw, "sarvam", "stt")
    assert after == (before[0] + 1, before[1] + 1, before[2] + 3)


def test_rag_input_checks(gw: Gateway) -> None:
    assert_problem(gw.client.post("/v1/rag/query", json={"query": "  "}), 422, "invalid_input")
    assert_problem(gw.client.post("/v1/rag/query", json={"query": "x", "top_k": 0}), 422, "invalid_input")
    assert_problem(gw.client.post("/v1/rag/documents", json={"documents": []}), 422, "invalid_input")


def test_valid_audio_passes_and_reports_its_real_duration(gw: Gateway, tmp_path: Path) -> None:
    gw.clear_upstream_requests()
    ok = stt(gw, wav(1.25, rate=8000), "audio/wav")
    assert ok.status_code == 200, ok.text
    assert ok.json()["audio_duration_sec"] == pytest.approx(1.25, abs=0.01)
    assert ok.json()["provider"] == "sarvam"
    ok_mp3 = stt(gw, mp3(1.0, tmp_path), "audio/mpeg", "en-US")
    assert ok_mp3.status_code == 200, ok_mp3.text
    assert ok_mp3.json()["provider"] == "deepgram"
    assert ok_mp3.json()["audio_duration_sec"] == pytest.approx(1.0, abs=0.1)
    gw.clear_upstream_requests()
