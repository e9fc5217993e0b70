"""Spans of provider calls, read from an in-memory exporter after real HTTP round trips."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

from .conftest import Gateway, attrs, by_name, wait_for_spans


def _server(spans: list[ReadableSpan], name: str) -> ReadableSpan:
    [span] = [s for s in spans if s.kind is SpanKind.SERVER and s.name == name]
    return span


def _children(spans: list[ReadableSpan], parent: ReadableSpan) -> list[ReadableSpan]:
    return [s for s in spans if s.parent is not None and s.parent.span_id == parent.context.span_id]


def _has_server_span(name: str) -> Callable[[list[ReadableSpan]], bool]:
    return lambda spans: any(s.kind is SpanKind.SERVER and s.name == name for s in spans)


def test_successful_call_is_a_server_provider_http_span_tree_and_traceparent_reaches_upstream(
    gateway: Gateway, sim: httpx.Client,
) -> None:
    with gateway() as (client, harness):
        response = client.post("/translate", json={"input": "hello"})
        assert response.status_code == 201, response.text
        spans = wait_for_spans(harness, _has_server_span("POST /translate"))

    server = _server(spans, "POST /translate")
    [provider] = _children(spans, server)
    assert (provider.name, provider.kind) == ("translate sarvam", SpanKind.CLIENT)
    assert attrs(provider)["provider"] == "sarvam" and attrs(provider)["operation"] == "translate"
    assert attrs(provider)["provider.circuit.state"] == "closed"
    assert "error.type" not in attrs(provider)
    assert provider.status.status_code is StatusCode.UNSET
    [http] = _children(spans, provider)
    assert http.kind is SpanKind.CLIENT and attrs(http)["http.status_code"] == 200
    assert provider.context.trace_id == server.context.trace_id == http.context.trace_id
    # Litestar's per-message ASGI spans ("POST /translate http send") are switched off.
    assert not [s for s in spans if s.name.endswith((" http send", " http receive"))]

    [received] = sim.get("/requests", params={"provider": "sarvam"}).json()
    _, trace_id, parent_id, _ = received["traceparent"].split("-")
    assert trace_id == format(provider.context.trace_id, "032x")
    assert parent_id == format(http.context.span_id, "016x")


def test_failed_call_marks_the_provider_span_with_error_type(gateway: Gateway, sim: httpx.Client) -> None:
    sim.put("/faults", json={"provider": "sarvam", "error_rate": 1.0, "status_code": 503}).raise_for_status()
    with gateway() as (client, harness):
        response = client.post("/translate", json={"input": "hello"})
        spans = wait_for_spans(harness, _has_server_span("POST /translate"))

    assert response.status_code == 502
    server = _server(spans, "POST /translate")
    [provider] = by_name(spans, "translate sarvam")
    assert provider.status.status_code is StatusCode.ERROR
    assert attrs(provider)["error.type"] == "upstream_5xx"
    assert response.json()["trace_id"] == format(server.context.trace_id, "032x")
    [http] = _children(spans, provider)
    assert attrs(http)["http.status_code"] == 503


def test_breaker_opening_and_rejection_are_span_events(gateway: Gateway, sim: httpx.Client) -> None:
    sim.put("/faults", json={"provider": "sarvam", "error_rate": 1.0}).raise_for_status()
    with gateway({"SARVAM_MAX_FAILURES": "1"}) as (client, harness):
        assert client.post("/translate", json={"input": "a"}).status_code == 502
        rejected = client.post("/translate", json={"input": "b"})
        spans = wait_for_spans(harness, lambda s: len([x for x in s if x.kind is SpanKind.SERVER]) == 2)

    assert rejected.status_code == 503 and rejected.json()["error_type"] == "circuit_open"
    failed, refused = sorted(by_name(spans, "translate sarvam"), key=lambda s: s.start_time or 0)
    [opened] = [e for e in failed.events if e.name == "circuit_breaker.state_change"]
    assert dict(opened.attributes or {})["circuit.state.to"] == "open"
    assert [e.name for e in refused.events] == ["rejected.circuit_open"]
    assert attrs(refused)["error.type"] == "circuit_open"
    assert _children(spans, refused) == []  # no HTTP call was made
    assert len(sim.get("/requests").json()) == 1


def test_genai_call_follows_the_genai_span_convention(gateway: Gateway) -> None:
    with gateway({"OPENAI_MODEL": "gpt-test"}) as (client, harness):
        body = client.post("/chat", json={"text": "namaste"}).json()
        spans = wait_for_spans(harness, _has_server_span("POST /chat"))

    [provider] = by_name(spans, "chat gpt-test")
    assert provider.kind is SpanKind.CLIENT
    assert attrs(provider)["gen_ai.operation.name"] == "chat"
    assert attrs(provider)["gen_ai.request.model"] == "gpt-test"
    assert attrs(provider)["gen_ai.usage.input_tokens"] == body["usage"]["prompt_tokens"]
    assert attrs(provider)["gen_ai.usage.output_tokens"] == body["usage"]["completion_tokens"]


def test_streamed_call_span_ends_with_the_stream(gateway: Gateway) -> None:
    with gateway() as (client, harness):
        audio = client.post("/tts", json={"text": "namaste duniya"}).content
        spans = wait_for_spans(harness, _has_server_span("POST /tts"))

    assert audio[:4] == b"RIFF"
    server = _server(spans, "POST /tts")
    [provider] = _children(spans, server)
    assert provider.name == "tts sarvam" and provider.status.status_code is StatusCode.UNSET
    assert provider.end_time is not None and server.end_time is not None
    assert len(_children(spans, provider)) == 1


def test_metrics_scrapes_make_no_server_spans(gateway: Gateway) -> None:
    with gateway() as (client, harness):
        assert client.get("/metrics").status_code == 200
        client.post("/translate", json={"input": "x"})
        spans = wait_for_spans(harness, _has_server_span("POST /translate"))
    assert not [s for s in spans if "/metrics" in s.name]


def test_sampler_from_the_environment(gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_off")
    with gateway() as (client, harness):
        assert client.post("/translate", json={"input": "x"}).status_code == 201
        assert client.get("/metrics").status_code == 200
    assert harness.spans.get_finished_spans() == ()
