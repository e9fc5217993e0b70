"""Streamed TTS and chat relay bytes as they arrive; the official openai client uses the gateway."""

from __future__ import annotations

import time

import httpx
import openai
import pytest

from app.calls import ServiceKey
from tests.gateway import running_gateway


def test_tts_first_bytes_arrive_before_the_audio_is_complete() -> None:
    with running_gateway() as gw:
        gw.fault("sarvam", operation="tts", chunk_delay_ms=250)
        text = "A long sentence that takes a while to speak, so that it spans many chunks of audio. " * 2
        started = time.monotonic()
        arrivals: list[float] = []
        size = 0
        with httpx.stream("POST", gw.url + "/v1/tts", json={"text": text, "language_code": "en-IN"},
                          timeout=30) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("audio/wav")
            for chunk in response.iter_raw():
                arrivals.append(time.monotonic() - started)
                size += len(chunk)
        assert len(arrivals) >= 4
        total = arrivals[-1]
        assert total > 1.0  # the simulator took its time producing the audio...
        assert arrivals[0] < total / 3  # ...and the first bytes were relayed long before it was done
        assert size > 44


def test_truncated_stream_is_recorded_as_malformed() -> None:
    with running_gateway({"FALLBACKS_ENABLED": "false"}) as gw:
        gw.fault("openai", operation="chat", truncate=True)
        body = b""
        with httpx.stream("POST", gw.url + "/v1/chat/completions", timeout=30,
                          json={"messages": [{"role": "user", "content": "tell me a long story"}], "stream": True}
                          ) as response:
            assert response.status_code == 200  # the first chunk came, so the answer had begun
            with pytest.raises(httpx.RemoteProtocolError):  # and it ends as abruptly as upstream's
                for chunk in response.iter_raw():
                    body += chunk
        assert body.startswith(b"data: ") and b"[DONE]" not in body
        assert gw.manager.pipeline.breakers[ServiceKey("openai", "chat")].fail_counter == 1
        chat = gw.manager.monitoring.get_health_status().providers["openai"].operations["chat"]
        assert chat.errors == {"upstream_malformed": 1}


def test_official_openai_client_against_the_gateway() -> None:
    with running_gateway() as gw:
        client = openai.OpenAI(base_url=gw.url + "/v1", api_key="unused", max_retries=0)
        completion = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "Say hello"}])
        assert completion.choices[0].message.content
        assert completion.usage is not None and completion.usage.total_tokens > 0
        chunks = list(client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "Say hello"}], stream=True,
            stream_options={"include_usage": True}))
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text == completion.choices[0].message.content
        assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
        without_usage = list(client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "Say hello"}], stream=True))
        assert all(c.usage is None for c in without_usage)
        vectors = client.embeddings.create(model="text-embedding-3-small", input=["one", "two"])
        assert len(vectors.data) == 2 and len(vectors.data[0].embedding) == 1536
        floats = client.embeddings.create(model="text-embedding-3-small", input="one", encoding_format="float")
        assert floats.data[0].embedding == pytest.approx(vectors.data[0].embedding, abs=1e-6)
        gw.fault("openai", operation="chat", error_rate=1.0, status_code=500)
        try:
            client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
        except openai.APIStatusError as error:
            assert error.status_code == 502
            assert error.response.headers["content-type"].startswith("application/problem+json")
        else:
            raise AssertionError("an upstream failure must reach the client as an error")
