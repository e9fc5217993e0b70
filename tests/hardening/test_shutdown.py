"""SIGTERM lets in-flight requests and streams finish within the grace period, flushes telemetry,
exits 0."""

from __future__ import annotations

import io
import threading
import time
import wave
from pathlib import Path

import httpx
import pytest

from tests.telemetry.otlp_receiver import http_receiver

from .servers import gateway_process, simulated_providers, simulator_process

pytestmark = pytest.mark.stack

GRACE = 10.0
TEXT = "A sentence long enough to take a few seconds to speak, so that it streams in many chunks."


def test_sigterm_mid_stream_delivers_the_whole_wav_and_pending_answers_then_exits_cleanly(tmp_path: Path) -> None:
    with http_receiver() as (otlp_url, received), simulator_process(tmp_path) as sim:
        sim.client.put("/_sim/faults", json={"provider": "sarvam", "operation": "tts",
                                             "chunk_delay_ms": 150}).raise_for_status()
        sim.client.put("/_sim/faults", json={"provider": "openai", "operation": "chat",
                                             "latency_ms": 2000}).raise_for_status()
        env = {**simulated_providers(sim.url), "SHUTDOWN_GRACE": str(GRACE), "FALLBACKS_ENABLED": "false",
               "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_url, "OTEL_BSP_SCHEDULE_DELAY": "600000"}
        with gateway_process(env, tmp_path) as gateway:
            first_chunk = threading.Event()
            body = bytearray()
            chunks: list[float] = []

            def listen() -> None:
                with httpx.stream("POST", gateway.url + "/v1/tts", timeout=60,
                                  json={"text": TEXT, "language_code": "en-IN", "provider": "sarvam"}) as response:
                    assert response.status_code == 200
                    for chunk in response.iter_bytes():
                        body.extend(chunk)
                        chunks.append(time.monotonic())
                        first_chunk.set()

            answers: list[httpx.Response] = []

            def ask() -> None:  # a slow non-streamed call, in flight at SIGTERM too
                answers.append(httpx.post(gateway.url + "/v1/chat/completions", timeout=60,
                                          json={"messages": [{"role": "user", "content": "hi"}]}))

            listener, asker = threading.Thread(target=listen), threading.Thread(target=ask)
            listener.start()
            asker.start()
            assert first_chunk.wait(15), gateway.output()
            terminated = time.monotonic()
            gateway.terminate()
            listener.join(GRACE + 5)
            asker.join(GRACE + 5)
            assert not listener.is_alive() and not asker.is_alive()
            code = gateway.process.wait(GRACE + 5)
            exited = time.monotonic() - terminated
            output = gateway.output()

    assert code == 0, output
    assert [a.status_code for a in answers] == [200]
    assert exited < GRACE, output
    assert chunks[-1] - terminated > 1.0  # the stream really was in flight for a while after SIGTERM
    with wave.open(io.BytesIO(bytes(body))) as audio:  # a complete WAV: every frame its header promises
        frames = audio.getnframes()
        assert frames > 0 and len(audio.readframes(frames)) == frames * audio.getsampwidth()
    assert int.from_bytes(body[4:8], "little") + 8 == len(body)
    # Spans were batched for minutes: they arrived because shutdown flushed them.
    names = {span.name for _, span in received.spans()}
    assert "tts sarvam" in names, names
