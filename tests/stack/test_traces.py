"""Traces and log records end to end on the built stack: the gateway exports over OTLP/HTTP to the
built Collector, which sends spans to the built Jaeger and log records to the stack's log sink.
Each trace is read back from Jaeger by the id the gateway reported (``traceresponse`` on success,
problem+json ``trace_id`` on failure) and holds the server span, the provider span and the HTTP
client span, linked and with the attributes docs/DESIGN.md names (Telemetry contract)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from app.stack import logsink
from tests.support import wait_until

from .otlp import CLIENT, SERVER, JaegerSpan, Traced, reported, traced_gateway

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}]}


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Traced]:
    with traced_gateway(tmp_path_factory.mktemp("traces"), {"FALLBACKS_ENABLED": "false"}) as traced:
        yield traced


def call_spans(traced: Traced, trace_id: str, server_name: str) -> tuple[JaegerSpan, JaegerSpan, JaegerSpan]:
    """The server span named ``server_name``, the provider span under it and the HTTP client span
    under that, checked for the attributes every call has."""
    spans = traced.trace(trace_id, 4)  # the simulator's own server span makes the fourth
    [server] = [s for s in spans if s.name == server_name]
    [provider] = [s for s in spans if s.parent == server.span_id]
    [http] = [s for s in spans if s.parent == provider.span_id]
    assert (server.kind, provider.kind, http.kind) == (SERVER, CLIENT, CLIENT)
    assert server.resource["service.name"] == "ai-gateway"
    method, route = server_name.split(" ")
    assert server.attributes["http.request.method"] == method and server.attributes["http.route"] == route
    assert {"provider", "operation", "provider.circuit.state", "gateway.call.wait"} <= provider.attributes.keys()
    # opentelemetry-instrumentation-httpx writes the older HTTP conventions' names (DESIGN.md).
    assert http.name == "POST" and http.attributes["http.method"] == "POST"
    assert http.attributes["http.url"].startswith(traced.gateway.url + "/_sim/")
    return server, provider, http


def test_a_v1_call_is_one_trace_in_jaeger(traced: Traced) -> None:
    response = traced.gateway.translate()
    assert response.status_code == 200, response.text
    trace_id, server_span_id = reported(response)
    assert response.json()["request_id"] == trace_id

    server, provider, http = call_spans(traced, trace_id, "POST /v1/translate")
    assert server.span_id == server_span_id and server.attributes["http.response.status_code"] == 200
    assert provider.name == "translate sarvam"
    assert provider.attributes["provider"] == "sarvam" and provider.attributes["operation"] == "translate"
    assert provider.attributes["provider.circuit.state"] == "closed" and "error.type" not in provider.attributes
    assert http.attributes["http.status_code"] == 200 and http.attributes["http.url"].endswith("/translate")


def test_a_dropin_call_is_one_trace_with_the_genai_attributes(traced: Traced) -> None:
    response = traced.gateway.client.post("/openai/v1/chat/completions", json=CHAT)
    assert response.status_code == 200, response.text
    trace_id, server_span_id = reported(response)

    server, provider, http = call_spans(traced, trace_id, "POST /openai/v1/chat/completions")
    assert server.span_id == server_span_id
    usage = response.json()["usage"]
    assert provider.name == "chat gpt-4o-mini" and provider.attributes["provider"] == "openai"
    assert provider.attributes["gen_ai.operation.name"] == "chat"
    assert provider.attributes["gen_ai.provider.name"] == "openai"
    assert provider.attributes["gen_ai.request.model"] == "gpt-4o-mini"
    assert provider.attributes["gen_ai.usage.input_tokens"] == usage["prompt_tokens"]
    assert provider.attributes["gen_ai.usage.output_tokens"] == usage["completion_tokens"]
    assert http.attributes["http.url"].endswith("/openai/v1/chat/completions")


def test_a_streamed_tts_is_one_trace_whose_spans_end_after_the_audio(traced: Traced) -> None:
    body = {"text": "namaste", "language_code": "hi-IN"}
    with traced.gateway.client.stream("POST", "/v1/tts", json=body) as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith("audio/wav")
        trace_id, server_span_id = reported(response)  # sent before the body
        audio = b"".join(response.iter_bytes())
    assert audio[:4] == b"RIFF"

    server, provider, http = call_spans(traced, trace_id, "POST /v1/tts")
    assert server.span_id == server_span_id and provider.attributes["operation"] == "tts"
    assert provider.name == f"tts {provider.attributes['provider']}"
    assert http.attributes["http.status_code"] == 200
    # The provider span covers the whole stream, so it ends after the upstream answer's span starts.
    assert int(provider.raw["endTimeUnixNano"]) >= int(http.raw["endTimeUnixNano"])


def test_a_failed_call_is_found_by_its_problem_trace_id_and_logged_with_it(traced: Traced) -> None:
    gateway = traced.gateway
    gateway.fault("sarvam", operation="translate", error_rate=1.0, status_code=500)
    try:
        response = gateway.translate()
    finally:
        gateway.clear_faults()
    assert response.status_code == 502 and response.headers["content-type"] == "application/problem+json"
    trace_id = response.json()["trace_id"]
    assert reported(response)[0] == trace_id

    server, provider, http = call_spans(traced, trace_id, "POST /v1/translate")
    assert server.failed and server.attributes["error.type"] == "502"
    assert provider.failed and provider.attributes["error.type"] == "upstream_5xx"
    assert http.attributes["http.status_code"] == 500

    # The failure's log record went gateway -> Collector -> log sink with the same trace and span.
    assert traced.stack.logs is not None
    path = traced.stack.logs

    def failure_logged() -> list[dict[str, Any]]:
        return [r for r in logsink.read(path) if (r["event_name"], r["trace_id"]) == ("provider.call.failed", trace_id)]

    [record] = wait_until(failure_logged, 15, "the failure's log record in the sink", 0.1)
    span_ids = {s.span_id for s in traced.trace(trace_id, 4)}
    assert record["span_id"] in span_ids
    assert record["resource"]["service.name"] == "ai-gateway"
    assert record["attributes"]["provider"] == "sarvam" and record["attributes"]["error_type"] == "upstream_5xx"
