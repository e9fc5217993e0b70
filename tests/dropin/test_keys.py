"""Keys never leak through the drop-in routes: the gateway client key, which the SDKs send as their
own credential, never reaches a provider (the provider key does, in its place), and no key appears
in what the gateway answers, logs or traces, whether the call works or fails in any way."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from app.config import load_settings
from app.main import create_app
from app.simulator import create_simulator_app
from app.simulator.audio import synth_wav
from tests.hardening.test_secret_leaks import FAULTS, SECRETS, Evidence
from tests.support import LiveServer, live_server

from .sdks import NO_RETRIES, deepgram_sdk, openai_sdk, sarvam_sdk

CLIENT_KEY = SECRETS["GATEWAY_API_KEYS"]
WAV = synth_wav(0.5, 16000)
CALLS: dict[str, tuple[str, str, Callable[[str], object]]] = {
    "translate": ("sarvam", "translate", lambda url: sarvam_sdk(url, CLIENT_KEY).text.translate(
        input="hello", source_language_code="en-IN", target_language_code="hi-IN", request_options=NO_RETRIES)),
    "sarvam tts": ("sarvam", "tts", lambda url: sarvam_sdk(url, CLIENT_KEY).text_to_speech.convert(
        text="hello", language_code="hi-IN", request_options=NO_RETRIES)),
    "sarvam tts stream": ("sarvam", "tts", lambda url: b"".join(sarvam_sdk(url, CLIENT_KEY).text_to_speech
                                                                .convert_stream(text="hello", language_code="hi-IN",
                                                                                request_options=NO_RETRIES))),
    "sarvam stt": ("sarvam", "stt", lambda url: sarvam_sdk(url, CLIENT_KEY).speech_to_text.transcribe(
        file=("a.wav", io.BytesIO(WAV), "audio/wav"), request_options=NO_RETRIES)),
    "deepgram listen": ("deepgram", "stt", lambda url: deepgram_sdk(url, CLIENT_KEY).listen.v1.media
                        .transcribe_file(request=WAV)),
    "deepgram speak": ("deepgram", "tts", lambda url: b"".join(deepgram_sdk(url, CLIENT_KEY).speak.v1.audio
                                                               .generate(text="hello"))),
    "chat": ("openai", "chat", lambda url: openai_sdk(url, CLIENT_KEY).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])),
    "chat stream": ("openai", "chat", lambda url: list(openai_sdk(url, CLIENT_KEY).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True))),
    "embeddings": ("openai", "embeddings", lambda url: openai_sdk(url, CLIENT_KEY).embeddings.create(
        model="text-embedding-3-small", input="hi")),
}


class Tap:
    """An ASGI app's traffic as it is on the wire: each request's path, query and headers, and each
    answer's status, headers and body."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.requests: list[str] = []
        self.answers: list[tuple[str, list[str]]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = "\n".join(f"{k.decode()}: {v.decode()}" for k, v in scope["headers"])
        self.requests.append(f"{scope['path']}?{scope['query_string'].decode()}\n{headers}")
        answer: list[str] = []
        self.answers.append((scope["path"], answer))

        async def tapped(message: Any) -> None:
            if message["type"] == "http.response.start":
                answer.append(f"{message['status']}\n" + "\n".join(f"{k.decode()}: {v.decode()}"
                                                                   for k, v in message.get("headers", [])))
            elif message["type"] == "http.response.body":
                answer.append(message.get("body", b"").decode(errors="replace"))
            await send(message)

        await self.app(scope, receive, tapped)


@pytest.fixture
def simulator() -> Iterator[tuple[Tap, LiveServer]]:
    """A fixture, so that it is running before the test's logs are captured (a Litestar app of its
    own, the simulator installs Litestar's logging when it starts)."""
    tap = Tap(create_simulator_app())
    with live_server(tap) as server:
        yield tap, server


def test_no_key_leaks_through_the_drop_in_routes(
    simulator: tuple[Tap, LiveServer], caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpx2", "openai", "aiohttp", "litestar"):
        caplog.set_level(logging.DEBUG, logger=name)
    upstream_tap, sim = simulator
    spans = InMemorySpanExporter()
    failures = 0
    env = {**SECRETS, "HEALTH_CHECK_INTERVAL": "3600", "ALERT_EVAL_INTERVAL": "3600", "LOG_LEVEL": "debug",
           "SARVAM_BASE_URL": sim.url + "/_sim/sarvam", "DEEPGRAM_BASE_URL": sim.url + "/_sim/deepgram",
           "OPENAI_BASE_URL": sim.url + "/_sim/openai/v1",
           **{f"{p}_{k}": v for p in ("SARVAM", "DEEPGRAM", "OPENAI")
              for k, v in (("TIMEOUT", "0.5"), ("MAX_FAILURES", "1000"), ("RATE_LIMIT", "100000"))}}
    app = create_app(load_settings(env))
    app.state.service_manager.telemetry.tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    gateway = Tap(app)
    with live_server(gateway) as server, httpx.Client(base_url=sim.url + "/_sim", timeout=10) as faults:
        for fault in [{}, *FAULTS]:
            for provider, operation, call in CALLS.values():
                faults.delete("/faults").raise_for_status()
                if fault:
                    faults.put("/faults", json={"provider": provider, "operation": operation, **fault}
                               ).raise_for_status()
                try:
                    call(server.url)
                except Exception:
                    failures += 1
    upstream = [r for r in upstream_tap.requests if not r.startswith("/_sim/faults")]
    assert len(upstream) >= len(CALLS) * (1 + len(FAULTS)) - 10  # held 429s do not all reach it
    assert not [r for r in upstream if CLIENT_KEY in r], "the client key reached a provider"
    for provider_key in (SECRETS["SARVAM_API_KEY"], SECRETS["DEEPGRAM_API_KEY"], SECRETS["OPENAI_API_KEY"]):
        assert any(provider_key in r for r in upstream), "the gateway did not put the provider key upstream"
    evidence = Evidence()
    evidence.texts += [(path, "\n".join(answer)) for path, answer in gateway.answers]
    formatter = logging.Formatter()
    evidence.texts += [(f"log {r.name}", formatter.format(r) + repr(vars(r))) for r in caplog.records]
    provider_spans = [s for s in spans.get_finished_spans() if s.kind is SpanKind.CLIENT]
    evidence.texts += [(f"span {s.name}", s.to_json()) for s in provider_spans]
    assert failures >= len(CALLS) * 6 and len(provider_spans) > 100 and len(caplog.records) > 50
    assert {s.attributes["error.type"] for s in provider_spans if s.attributes and "error.type" in s.attributes} >= {
        "auth", "timeout", "upstream_5xx", "upstream_4xx", "upstream_rate_limited", "upstream_malformed"}
    assert evidence.leaks() == []

