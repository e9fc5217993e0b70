"""Every operation's cost through the public surface, against prices computed here by hand from the
providers' published per-unit prices: usage as the provider reported it (OpenAI's ``usage``, a
streamed chat included) or as the gateway measured it; attributed to the key's name; on the
``/metrics`` counters, the provider span (``gateway.cost.usd``) and the access log."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families

from tests.audio import wav
from tests.gateway import Gateway, running_gateway
from tests.support import wait_until

INR_PER_USD = 89.44
KEYS = {"team-a": "key-a", "team-b": "key-b"}
ENV = {"GATEWAY_API_KEYS": "team-a:key-a,team-b:key-b,plain-key", "ACCESS_LOG": "true", "FALLBACKS_ENABLED": "false"}


@pytest.fixture(scope="module")
def gateway() -> Iterator[tuple[Gateway, InMemorySpanExporter]]:
    with running_gateway(ENV) as gw:
        spans = InMemorySpanExporter()
        gw.manager.telemetry.tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
        yield gw, spans


def as_client(gw: Gateway, client: str) -> httpx.Client:
    key = KEYS.get(client, "plain-key")
    return httpx.Client(base_url=gw.url, timeout=30, headers={"authorization": f"Bearer {key}"})


def cost(gw: Gateway, **labels: str) -> float:
    """``provider_client_cost_usd_total`` summed over the series matching ``labels``."""
    return _summed(gw, "provider_client_cost_usd", labels)


def usage(gw: Gateway, **labels: str) -> float:
    return _summed(gw, "provider_client_usage", labels)


def _summed(gw: Gateway, family: str, labels: dict[str, str]) -> float:
    text = gw.client.get("/metrics").text
    return sum(sample.value for metric in text_string_to_metric_families(text) if metric.name == family
               for sample in metric.samples if sample.name == family + "_total"
               and all(sample.labels.get(k) == v for k, v in labels.items()))


def spent(gw: Gateway, call: Any, **labels: str) -> float:
    """What the counter gained while ``call`` ran."""
    before = cost(gw, **labels)
    call()
    return cost(gw, **labels) - before


def test_translate_costs_its_characters_at_sarvams_price(gateway: tuple[Gateway, InMemorySpanExporter]) -> None:
    gw, _ = gateway
    text = "good morning, how are you"  # 25 characters at ₹20 per 10K
    with as_client(gw, "team-a") as client:
        delta = spent(gw, lambda: client.post("/v1/translate", json={
            "input": text, "source_language_code": "en-IN", "target_language_code": "hi-IN"}).raise_for_status(),
                      provider="sarvam", operation="translate", client="team-a")
    assert delta == pytest.approx(25 * 20 / 10_000 / INR_PER_USD, rel=1e-9)


@pytest.mark.parametrize(("provider", "usd_per_character"), [
    ("sarvam", 30 / 10_000 / INR_PER_USD),  # Bulbul, ₹30 per 10K characters
    ("deepgram", 0.030 / 1000),  # Aura-2 (the default voice aura-2-thalia-en), $0.030 per 1K
])
def test_streamed_speech_costs_its_characters(gateway: tuple[Gateway, InMemorySpanExporter], provider: str,
                                              usd_per_character: float) -> None:
    gw, _ = gateway
    text = "namaste duniya"  # 14 characters
    language = "hi-IN" if provider == "sarvam" else "en-US"
    with as_client(gw, "team-b") as client:
        delta = spent(gw, lambda: client.post("/v1/tts", json={"text": text, "language_code": language,
                                                               "provider": provider}).raise_for_status(),
                      provider=provider, operation="tts", client="team-b")
    assert delta == pytest.approx(14 * usd_per_character, rel=1e-9)


@pytest.mark.parametrize(("provider", "usd_per_second"), [
    ("sarvam", 30 / 3600 / INR_PER_USD),  # ₹30 per hour, billed per second
    ("deepgram", 0.0048 / 60),  # Nova-3, $0.0048 per minute, billed per second
])
def test_transcription_costs_its_audio_seconds(gateway: tuple[Gateway, InMemorySpanExporter], provider: str,
                                               usd_per_second: float) -> None:
    gw, _ = gateway
    language = "hi-IN" if provider == "sarvam" else "en-US"
    with as_client(gw, "team-a") as client:
        delta = spent(gw, lambda: client.post("/v1/stt", files={"file": ("a.wav", wav(2.5), "audio/wav")},
                                              data={"language_code": language, "provider": provider}
                                              ).raise_for_status(),
                      provider=provider, operation="stt", client="team-a")
    assert delta == pytest.approx(2.5 * usd_per_second, rel=1e-6)
    assert usage(gw, provider=provider, operation="stt", client="team-a", unit="audio_second") >= 2.5


def test_chat_costs_the_tokens_openai_reported(gateway: tuple[Gateway, InMemorySpanExporter]) -> None:
    gw, spans = gateway
    spans.clear()
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "what is the capital of India?"}]}
    with as_client(gw, "team-a") as client:
        answer: dict[str, Any] = {}
        delta = spent(gw, lambda: answer.update(client.post("/v1/chat/completions", json=body).json()),
                      provider="openai", operation="chat", model="gpt-4o-mini", client="team-a")
    tokens = answer["usage"]
    expected = tokens["prompt_tokens"] * 0.15e-6 + tokens["completion_tokens"] * 0.60e-6  # $0.15, $0.60 per M
    assert tokens["prompt_tokens"] > 0 and tokens["completion_tokens"] > 0
    assert delta == pytest.approx(expected, rel=1e-9)
    [span] = [s for s in spans.get_finished_spans() if s.name == "chat gpt-4o-mini"]
    attributes = dict(span.attributes or {})
    assert attributes["gateway.cost.usd"] == pytest.approx(expected, rel=1e-9)
    assert attributes["gateway.client"] == "team-a"


def streamed(client: httpx.Client, body: dict[str, Any]) -> list[dict[str, Any]]:
    response = client.post("/v1/chat/completions", json={**body, "stream": True})
    response.raise_for_status()
    return [json.loads(line[5:]) for line in response.text.splitlines()
            if line.startswith("data:") and line[5:].strip() != "[DONE]"]


def test_a_streamed_chat_costs_its_tokens_whether_or_not_the_caller_asked_for_usage(
        gateway: tuple[Gateway, InMemorySpanExporter]) -> None:
    gw, _ = gateway
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "tell me about Chennai"}]}
    labels = {"provider": "openai", "operation": "chat", "client": "team-b"}
    with as_client(gw, "team-b") as client:
        asked: list[dict[str, Any]] = []
        with_usage = spent(gw, lambda: asked.extend(streamed(client, {**body, "stream_options": {
            "include_usage": True}})), **labels)
        plain: list[dict[str, Any]] = []
        without = spent(gw, lambda: plain.extend(streamed(client, body)), **labels)
    [tokens] = [event["usage"] for event in asked if event.get("usage")]
    assert not [event for event in plain if event.get("usage")], "the usage chunk reached a caller who did not ask"
    expected = tokens["prompt_tokens"] * 0.15e-6 + tokens["completion_tokens"] * 0.60e-6
    assert with_usage == pytest.approx(expected, rel=1e-9)
    assert without == pytest.approx(expected, rel=1e-9)  # the simulator answers the same messages alike


def test_embeddings_cost_their_input_tokens(gateway: tuple[Gateway, InMemorySpanExporter]) -> None:
    gw, _ = gateway
    with as_client(gw, "team-a") as client:
        answer: dict[str, Any] = {}
        delta = spent(gw, lambda: answer.update(client.post("/v1/embeddings", json={
            "model": "text-embedding-3-small", "input": ["one two three", "four five"]}).json()),
                      provider="openai", operation="embeddings", client="team-a")
    assert answer["usage"]["prompt_tokens"] == 5
    assert delta == pytest.approx(5 * 0.02e-6, rel=1e-9)  # $0.02 per M tokens


def test_rag_counts_documents_and_queries_and_bills_only_its_chat(
        gateway: tuple[Gateway, InMemorySpanExporter]) -> None:
    gw, _ = gateway
    with as_client(gw, "team-b") as client:
        documents = usage(gw, provider="rag", operation="ingest", client="team-b", unit="document")
        client.post("/v1/rag/documents", json={"documents": [
            {"id": "a", "text": "Chennai is on the coast"}, {"id": "b", "text": "Delhi is inland"}]}
                    ).raise_for_status()
        assert usage(gw, provider="rag", operation="ingest", client="team-b", unit="document") == documents + 2
        chat_before = cost(gw, provider="openai", operation="chat", client="team-b")
        rag_before = cost(gw, provider="rag", client="team-b")
        client.post("/v1/rag/query", json={"query": "where is Chennai?"}).raise_for_status()
    assert usage(gw, provider="rag", operation="query", client="team-b", unit="query") >= 1
    assert cost(gw, provider="rag", client="team-b") == rag_before  # the embedded store is free
    assert cost(gw, provider="openai", operation="chat", client="team-b") > chat_before


def test_an_unnamed_key_spends_as_anonymous_and_the_access_log_shows_who_and_what(
        gateway: tuple[Gateway, InMemorySpanExporter], caplog: pytest.LogCaptureFixture) -> None:
    gw, _ = gateway
    with as_client(gw, "nobody") as client, caplog.at_level(logging.INFO, logger="app.access"):
        delta = spent(gw, lambda: client.post("/v1/translate", json={
            "input": "abcd", "source_language_code": "en-IN", "target_language_code": "hi-IN"}).raise_for_status(),
                      provider="sarvam", operation="translate", client="anonymous")
        wait_until(lambda: [r for r in caplog.records if getattr(r, "path", None) == "/v1/translate"], 5,
                   "the access log line")
    assert delta == pytest.approx(4 * 20 / 10_000 / INR_PER_USD, rel=1e-9)
    [line] = [r for r in caplog.records if getattr(r, "path", None) == "/v1/translate"]
    assert line.client == "anonymous"  # type: ignore[attr-defined]
    assert line.cost_usd == pytest.approx(delta, rel=1e-6)  # type: ignore[attr-defined]
    assert line.getMessage().endswith(f" anonymous {line.cost_usd:.10g}")  # type: ignore[attr-defined]
    assert "plain-key" not in line.getMessage() and "key-a" not in gw.client.get("/metrics").text


def test_a_model_without_a_price_is_counted_with_cost_unknown_and_named_once(
        gateway: tuple[Gateway, InMemorySpanExporter], caplog: pytest.LogCaptureFixture) -> None:
    gw, _ = gateway
    body = {"model": "sim-house-model", "messages": [{"role": "user", "content": "hello"}]}
    with as_client(gw, "team-a") as client, caplog.at_level(logging.WARNING, logger="app.events"):
        before = usage(gw, provider="openai", operation="chat", model="sim-house-model", client="team-a")
        for _ in range(2):
            client.post("/v1/chat/completions", json=body).raise_for_status()
    assert usage(gw, provider="openai", operation="chat", model="sim-house-model", client="team-a") > before
    assert "sim-house-model" not in {s.labels.get("model") for m in text_string_to_metric_families(
        gw.client.get("/metrics").text) if m.name == "provider_client_cost_usd" for s in m.samples}
    warnings = [r for r in caplog.records if "sim-house-model" in r.getMessage()]
    assert len(warnings) == 1 and "cost unknown" in warnings[0].getMessage()
