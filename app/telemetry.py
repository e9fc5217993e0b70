"""OpenTelemetry: providers, exporters and instruments (placeholder; the telemetry work fills it)."""

from __future__ import annotations

from typing import Any

from opentelemetry.instrumentation.httpx import HTTPX2ClientInstrumentor


def instrument_http_client(client: Any) -> None:
    """HTTP client spans (and ``traceparent`` upstream) for a client with a custom transport."""
    HTTPX2ClientInstrumentor.instrument_client(client)
