"""A small gateway for the telemetry tests: the real Pipeline, Telemetry, problem answers and
``/metrics`` router in front of the simulator, served over loopback like the real one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import httpx2
from litestar import Litestar, post
from litestar.params import JSONBody
from litestar.response import Stream
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from app.api import metrics
from app.api.problems import EXCEPTION_HANDLERS
from app.calls import CallContext, CallSpec, invalid
from app.config import Settings, load_settings
from app.providers.base import Pipeline
from app.providers.http_client import make_http_client
from app.providers.upstream_errors import check_response
from app.providers.wav import wav_seconds
from app.telemetry import Telemetry

SIM_KEY = "sim-local-key"


@dataclass
class Harness:
    """Everything a test inspects: settings, telemetry, its in-memory outputs, the pipeline."""

    settings: Settings
    telemetry: Telemetry
    spans: InMemorySpanExporter
    reader: InMemoryMetricReader
    pipeline: Pipeline
    sim: str
    """The simulator's ``/_sim`` URL."""
    client: httpx2.AsyncClient | None = None

    def http(self) -> httpx2.AsyncClient:
        """The gateway's upstream client, made in the running loop (aiohttp binds to it)."""
        if self.client is None:
            self.client = make_http_client(self.telemetry, 64)
        return self.client

    async def translate(self, text: str, model: str | None = None) -> Any:
        spec = CallSpec("sarvam", "translate", model=model)

        def validate() -> None:
            if not text:
                raise invalid("input must not be empty")

        async def attempt(ctx: CallContext) -> Any:
            ctx.characters = len(text)
            response = await self.http().post(
                f"{self.sim}/sarvam/translate", headers={"api-subscription-key": SIM_KEY},
                json={"input": text, "source_language_code": "en-IN", "target_language_code": "hi-IN"})
            await check_response("sarvam", response)
            return response.json()

        return await self.pipeline.call(spec, attempt, validate=validate)

    async def chat(self, text: str) -> Any:
        spec = CallSpec("openai", "chat", model=self.settings.openai_model, gen_ai_operation="chat")

        async def attempt(ctx: CallContext) -> Any:
            response = await self.http().post(
                f"{self.sim}/openai/v1/chat/completions", headers={"authorization": f"Bearer {SIM_KEY}"},
                json={"model": spec.model, "messages": [{"role": "user", "content": text}]})
            await check_response("openai", response)
            body = response.json()
            ctx.input_tokens = body["usage"]["prompt_tokens"]
            ctx.output_tokens = body["usage"]["completion_tokens"]
            return body

        return await self.pipeline.call(spec, attempt)

    async def tts(self, text: str) -> AsyncIterator[bytes]:
        spec = CallSpec("sarvam", "tts")

        async def open_stream(ctx: CallContext) -> AsyncIterator[bytes]:
            ctx.characters = len(text)
            request = self.http().build_request(
                "POST", f"{self.sim}/sarvam/text-to-speech/stream", headers={"api-subscription-key": SIM_KEY},
                json={"text": text, "target_language_code": "hi-IN", "speech_sample_rate": 16000})
            response = await self.http().send(request, stream=True)
            try:
                await check_response("sarvam", response)
                size = 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    yield chunk
                ctx.audio_seconds = wav_seconds(size, 16000)
            finally:
                await response.aclose()

        return await self.pipeline.stream(spec, open_stream)


def build(sim: str, environ: dict[str, str] | None = None) -> tuple[Litestar, Harness]:
    """The app and its harness; ``sim`` is the simulator's base URL (without ``/_sim``)."""
    settings = load_settings(environ or {})
    spans, reader = InMemorySpanExporter(), InMemoryMetricReader()
    telemetry = Telemetry(settings, span_exporter=spans, metric_readers=[reader])
    pipeline = Pipeline(settings, observers=[telemetry.observer], tracer=telemetry.tracer)
    harness = Harness(settings, telemetry, spans, reader, pipeline, sim + "/_sim")

    @post("/translate")
    async def translate(data: JSONBody[dict[str, Any]]) -> Any:
        return await harness.translate(data["input"], data.get("model"))

    @post("/chat")
    async def chat(data: JSONBody[dict[str, Any]]) -> Any:
        return await harness.chat(data["text"])

    @post("/tts")
    async def tts(data: JSONBody[dict[str, Any]]) -> Stream:
        return Stream(await harness.tts(data["text"]), media_type="audio/wav")

    async def close_client() -> None:
        if harness.client is not None:
            await harness.client.aclose()
            harness.client = None

    app = Litestar(
        route_handlers=[translate, chat, tts, metrics.router],
        middleware=telemetry.server_middleware(),
        exception_handlers=EXCEPTION_HANDLERS,
        on_shutdown=[close_client],
        openapi_config=None,
    )
    app.state.service_manager = SimpleNamespace(telemetry=telemetry, settings=telemetry.settings)
    return app, harness
