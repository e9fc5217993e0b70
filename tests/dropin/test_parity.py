"""A drop-in call and the same call through ``/v1`` leave the same telemetry: the same metric series
move by the same amounts, and the same provider span (with the same HTTP client span under it)."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from openai.types.chat import ChatCompletionMessageParam
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from prometheus_client.parser import text_string_to_metric_families
from sarvamai.errors import UnprocessableEntityError

from app.providers.base import WAIT_ATTRIBUTE
from app.simulator.audio import synth_wav
from tests.gateway import Gateway, running_gateway
from tests.support import wait_until

from .sdks import NO_RETRIES, deepgram_sdk, openai_sdk, sarvam_sdk

WAV = synth_wav(1.0, 16000)
SPEECH = "Hello there, how are you today?"
MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Say hello"}]
Counters = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _refused(call: Callable[[], object]) -> None:
    with pytest.raises(UnprocessableEntityError):
        call()


V1: dict[str, Callable[[httpx.Client], object]] = {
    "sarvam.translate": lambda c: c.post("/v1/translate", json={
        "input": "Good morning", "source_language_code": "en-IN", "target_language_code": "hi-IN"}),
    "sarvam.translate refused": lambda c: c.post("/v1/translate", json={
        "input": "x" * 51, "source_language_code": "en-IN", "target_language_code": "hi-IN"}),
    "sarvam.tts": lambda c: c.post("/v1/tts", json={"text": SPEECH, "language_code": "hi-IN", "provider": "sarvam"}),
    "sarvam.stt": lambda c: c.post("/v1/stt", files={"file": ("a.wav", WAV, "audio/wav")},
                                   data={"language_code": "hi-IN", "provider": "sarvam"}),
    "deepgram.tts": lambda c: c.post("/v1/tts", json={"text": SPEECH, "language_code": "en-US",
                                                      "provider": "deepgram"}),
    "deepgram.stt": lambda c: c.post("/v1/stt", files={"file": ("a.wav", WAV, "audio/wav")},
                                     data={"language_code": "en-US", "provider": "deepgram"}),
    "openai.chat": lambda c: c.post("/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": MESSAGES}),
    "openai.chat stream": lambda c: c.post("/v1/chat/completions", json={
        "model": "gpt-4o-mini", "messages": MESSAGES, "stream": True}),
    "openai.embeddings": lambda c: c.post("/v1/embeddings", json={
        "model": "text-embedding-3-small", "input": ["hello world"]}),
}
DROP_IN: dict[str, Callable[[str], object]] = {
    "sarvam.translate": lambda url: sarvam_sdk(url).text.translate(
        input="Good morning", source_language_code="en-IN", target_language_code="hi-IN"),
    "sarvam.translate refused": lambda url: _refused(lambda: sarvam_sdk(url).text.translate(
        input="x" * 51, source_language_code="en-IN", target_language_code="hi-IN", request_options=NO_RETRIES)),
    "sarvam.tts": lambda url: b"".join(sarvam_sdk(url).text_to_speech.convert_stream(text=SPEECH,
                                                                                      language_code="hi-IN")),
    "sarvam.stt": lambda url: sarvam_sdk(url).speech_to_text.transcribe(file=("a.wav", io.BytesIO(WAV), "audio/wav"),
                                                                        language_code="hi-IN"),
    "deepgram.tts": lambda url: b"".join(deepgram_sdk(url).speak.v1.audio.generate(
        text=SPEECH, model="aura-2-thalia-en", encoding="linear16", container="wav", sample_rate=24000)),
    "deepgram.stt": lambda url: deepgram_sdk(url).listen.v1.media.transcribe_file(
        request=WAV, model="nova-3", language="en-US", smart_format=True),
    "openai.chat": lambda url: openai_sdk(url).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES),
    "openai.chat stream": lambda url: list(openai_sdk(url).chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True)),
    "openai.embeddings": lambda url: openai_sdk(url).embeddings.create(model="text-embedding-3-small",
                                                                       input=["hello world"]),
}


@pytest.fixture(scope="module")
def observed() -> Iterator[tuple[Gateway, InMemorySpanExporter]]:
    env = {"SARVAM_MAX_TEXT_LENGTH": "50", **{f"{p}_RATE_LIMIT": "100000" for p in ("SARVAM", "DEEPGRAM", "OPENAI")}}
    with running_gateway(env) as gateway:
        spans = InMemorySpanExporter()
        gateway.manager.telemetry.tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
        yield gateway, spans


def counters(gw: Gateway) -> Counters:
    """Every count the calls' metrics keep (histogram counts, counters, token sums; not latencies),
    and the in-app recorder's (``/health/metrics``)."""
    found: Counters = {}
    for service, numbers in gw.client.get("/health/metrics").json()["services"].items():
        counts = {"requests": numbers["requests"], "successes": numbers["successes"],
                  **{f"errors.{k}": v for k, v in numbers["errors"].items()},
                  **{f"rejections.{k}": v for k, v in numbers["rejections"].items()}}
        found.update({(f"recorder {service} {name}", frozenset()): value for name, value in counts.items()})
    for family in text_string_to_metric_families(gw.client.get("/metrics").text):
        for s in family.samples:
            if s.name.startswith(("provider_client", "provider_circuit", "gen_ai_", "gateway_call")) and (
                    s.name.endswith(("_count", "_total")) or s.name == "gen_ai_client_token_usage_sum"):
                found[(s.name, frozenset(s.labels.items()))] = s.value
    return found


def _http_child(span: ReadableSpan) -> tuple[Any, ...]:
    attributes = {k: str(v).split("?")[0] for k, v in (span.attributes or {}).items()}
    return span.name, span.kind, attributes


def provider_spans(spans: list[ReadableSpan]) -> list[tuple[Any, ...]]:
    """Each provider span (all but its wait inside the gateway) with the HTTP client spans under it
    (their URL without its query, which each caller words in its own order)."""
    found = []
    for span in spans:
        if span.kind is SpanKind.CLIENT and "provider" in (span.attributes or {}):
            attributes = {k: v for k, v in (span.attributes or {}).items() if k != WAIT_ATTRIBUTE}
            children = sorted(_http_child(c) for c in spans
                              if c.parent is not None and c.parent.span_id == span.context.span_id)
            found.append((span.name, attributes, [(e.name, dict(e.attributes or {})) for e in span.events],
                          span.status.status_code, children))
    return found


def observe(gw: Gateway, spans: InMemorySpanExporter, call: Callable[[], object]) -> tuple[Counters, list[Any]]:
    spans.clear()
    before = counters(gw)
    call()
    wait_until(lambda: provider_spans(list(spans.get_finished_spans())), 5, "a provider span")
    after = counters(gw)
    moved = {key: value - before.get(key, 0.0) for key, value in after.items() if value != before.get(key, 0.0)}
    return moved, provider_spans(list(spans.get_finished_spans()))


@pytest.mark.parametrize("name", list(V1))
def test_a_drop_in_call_leaves_the_telemetry_of_the_same_call_through_v1(
    observed: tuple[Gateway, InMemorySpanExporter], name: str,
) -> None:
    gw, spans = observed
    v1_metrics, v1_spans = observe(gw, spans, lambda: V1[name](gw.client))
    metrics, dropin_spans = observe(gw, spans, lambda: DROP_IN[name](gw.url))
    provider, operation = name.split(maxsplit=1)[0].split(".")
    assert ("provider_client_request_duration_seconds_count" in {k for k, _ in v1_metrics}) != name.endswith(
        "refused")
    assert all(dict(labels).get("provider", provider) == provider for _, labels in v1_metrics)
    assert metrics == v1_metrics
    recorded = "rejections.invalid_input" if name.endswith("refused") else "requests"
    assert metrics[(f"recorder {provider}.{operation} {recorded}", frozenset())] == 1
    assert len(v1_spans) == 1 and v1_spans[0][1]["operation"] == operation
    assert dropin_spans == v1_spans
