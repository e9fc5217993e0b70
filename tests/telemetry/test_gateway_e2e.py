"""End to end through the gateway's own HTTP API (``create_app``), its simulator mounted in it,
spans received by an OTLP/HTTP receiver and metrics scraped from ``/metrics``."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from litestar import Litestar
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status
from prometheus_client.parser import text_string_to_metric_families

from app.config import load_settings
from app.main import create_app
from app.stack.logsink import attributes
from tests.support import free_port, live_server

from .otlp_receiver import Received, http_receiver
from .test_metrics import value

TRANSLATE = {"input": "hello", "source_language_code": "en-IN", "target_language_code": "hi-IN"}


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Received]:
    with http_receiver() as (endpoint, received):
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
        yield received


def _gateway(environ: dict[str, str] | None = None) -> tuple[Litestar, int]:
    port = free_port()
    settings = load_settings({"HEALTH_CHECK_INTERVAL": "3600", **(environ or {})})
    return create_app(settings.with_simulator(f"http://127.0.0.1:{port}/_sim")), port


def _spans(received: Received) -> list[Span]:
    return [span for _, span in received.spans()]


def _server(spans: list[Span], name: str) -> Span:
    [span] = [s for s in spans if s.kind == Span.SPAN_KIND_SERVER and s.name == name]
    return span


def _children(spans: list[Span], parent: Span) -> list[Span]:
    return [s for s in spans if s.parent_span_id == parent.span_id]


def test_translate_through_the_gateway(receiver: Received) -> None:
    app, port = _gateway()
    with live_server(app, port) as server, httpx.Client(base_url=server.url, timeout=10) as client:
        response = client.post("/v1/translate", json=TRANSLATE)
        assert response.status_code in (200, 201), response.text
        [upstream] = client.get("/_sim/requests", params={"provider": "sarvam"}).json()
        metrics = client.get("/metrics")
    # Stopping the server stopped the service manager, whose telemetry flushed to the receiver.

    samples = [s for family in text_string_to_metric_families(metrics.text) for s in family.samples]
    translate = {"provider": "sarvam", "operation": "translate"}
    assert value(samples, "provider_client_request_duration_seconds_count", **translate, outcome="success") == 1
    assert value(samples, "provider_client_characters_total", **translate) == len("hello")

    spans = _spans(receiver)
    gateway_span = _server(spans, "POST /v1/translate")
    [provider] = _children(spans, gateway_span)
    assert provider.name == "translate sarvam" and provider.kind == Span.SPAN_KIND_CLIENT
    [http] = _children(spans, provider)
    assert http.kind == Span.SPAN_KIND_CLIENT
    assert upstream["traceparent"].split("-")[1:3] == [provider.trace_id.hex(), http.span_id.hex()]
    # The simulator, mounted in the gateway, continues the same trace.
    [simulated] = _children(spans, http)
    assert simulated.kind == Span.SPAN_KIND_SERVER and simulated.trace_id == gateway_span.trace_id


def test_fallback_shows_two_provider_spans_under_one_server_span(receiver: Received) -> None:
    app, port = _gateway()
    with live_server(app, port) as server, httpx.Client(base_url=server.url, timeout=10) as client:
        client.put("/_sim/faults", json={"provider": "sarvam", "error_rate": 1.0}).raise_for_status()
        response = client.post("/v1/translate", json=TRANSLATE)
    assert response.status_code in (200, 201), response.text
    assert response.headers["x-fallback"] == "true" and response.headers["x-provider"] == "openai"

    spans = _spans(receiver)
    gateway_span = _server(spans, "POST /v1/translate")
    first, second = sorted(_children(spans, gateway_span), key=lambda s: s.start_time_unix_nano)
    assert first.name == "translate sarvam" and first.status.code == Status.STATUS_CODE_ERROR
    assert attributes(first.attributes)["error.type"] == "upstream_5xx"
    assert second.name.startswith("chat ") and attributes(second.attributes)["gen_ai.provider.name"] == "openai"
    [fallback] = [e for e in gateway_span.events if e.name == "fallback"]
    assert attributes(fallback.attributes)["fallback.to"] == "openai"
