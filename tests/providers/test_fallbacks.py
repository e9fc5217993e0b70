"""Every fallback path, and when there is none."""

from __future__ import annotations

import io
import wave

from tests.audio import wav
from tests.gateway import running_gateway
from tests.providers.test_resilience import assert_problem


def test_translate_falls_back_to_openai_chat() -> None:
    with running_gateway() as gw:
        gw.fault("sarvam", operation="translate", error_rate=1.0, status_code=500)
        response = gw.translate("good morning")
        assert response.status_code == 200, response.text
        assert response.headers["x-provider"] == "openai"
        assert response.headers["x-fallback"] == "true"
        assert response.json()["provider"] == "openai" and response.json()["translated_text"]
        assert [r["operation"] for r in gw.upstream_requests("openai")] == ["chat"]


def test_no_fallback_for_invalid_input() -> None:
    with running_gateway({"SARVAM_MAX_TEXT_LENGTH": "5"}) as gw:
        gw.fault("sarvam", error_rate=1.0, status_code=500)
        assert_problem(gw.translate("far too long"), 422, "invalid_input")
        assert gw.upstream_requests() == []


def test_tts_falls_back_to_deepgram_for_a_language_it_speaks() -> None:
    with running_gateway() as gw:
        gw.fault("sarvam", operation="tts", error_rate=1.0, status_code=503)
        response = gw.client.post("/v1/tts", json={"text": "Hello there", "language_code": "en-IN"})
        assert response.status_code == 200, response.text
        assert response.headers["x-provider"] == "deepgram" and response.headers["x-fallback"] == "true"
        with wave.open(io.BytesIO(response.content)) as audio:
            assert audio.getnframes() > 0
        # Hindi has no second provider for speech synthesis: the failure is the answer.
        hindi = gw.client.post("/v1/tts", json={"text": "नमस्ते", "language_code": "hi-IN"})
        assert_problem(hindi, 502, "upstream_5xx")


def test_no_fallback_when_the_caller_named_a_provider() -> None:
    with running_gateway() as gw:
        gw.fault("sarvam", operation="tts", error_rate=1.0, status_code=503)
        named = gw.client.post("/v1/tts", json={"text": "Hello", "language_code": "en-IN", "provider": "sarvam"})
        assert_problem(named, 502, "upstream_5xx")
        assert gw.upstream_requests("deepgram") == []


def test_stt_falls_back_between_speech_providers() -> None:
    with running_gateway() as gw:
        gw.fault("sarvam", operation="stt", error_rate=1.0, status_code=500)
        response = gw.client.post("/v1/stt", files={"file": ("a.wav", wav(0.8), "audio/wav")},
                                  data={"language_code": "hi-IN"})
        assert response.status_code == 200, response.text
        assert response.json()["provider"] == "deepgram" and response.headers["x-fallback"] == "true"
        assert response.json()["transcript"]


def test_rag_answers_from_chat_and_degrades_to_passages_without_it() -> None:
    with running_gateway() as gw:
        docs = {"documents": [
            {"id": "monsoon", "text": "The monsoon reaches Kerala in early June."},
            {"id": "tea", "text": "Assam grows tea on the banks of the Brahmaputra."},
        ]}
        assert gw.client.post("/v1/rag/documents", json=docs).json() == {"ingested": 2}
        answer = gw.client.post("/v1/rag/query", json={"query": "When does the monsoon reach Kerala?"})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["degraded"] is False and body["answer"]
        assert body["sources"][0]["id"] == "monsoon" and body["sources"][0]["score"] > 0
        gw.fault("openai", operation="chat", error_rate=1.0, status_code=500)
        degraded = gw.client.post("/v1/rag/query", json={"query": "monsoon Kerala"}).json()
        assert degraded["degraded"] is True and degraded["answer"] is None
        assert degraded["sources"][0]["id"] == "monsoon"
