"""The built stack fed by a gateway over OTLP: the gateway's OTLP settings pointed at the stack's
Collector, and traces read back from Jaeger's query API (``/api/v3``, OTLP JSON)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import httpx
import pytest

from app.stack.processes import Options, Running, running
from tests.gateway import Gateway, running_gateway
from tests.support import wait_until

EXPORT_DELAY_MS = "100"
"""The SDK's batch processors and the Collector's batch processor wait this long (tests only)."""
UNSCRAPED = "http://127.0.0.1:9"
"""The gateway URL given to the stack, whose Prometheus is told not to scrape it."""


def otlp_environment(otlp_http: str) -> dict[str, str]:
    """The ``OTEL_*`` variables that send the gateway's traces, metrics and logs to ``otlp_http``."""
    return {"OTEL_EXPORTER_OTLP_ENDPOINT": otlp_http, "OTEL_BSP_SCHEDULE_DELAY": EXPORT_DELAY_MS,
            "OTEL_BLRP_SCHEDULE_DELAY": EXPORT_DELAY_MS, "OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED": "true"}


@dataclass
class Traced:
    """A gateway whose telemetry goes to a running stack."""

    gateway: Gateway
    stack: Running

    def trace(self, trace_id: str, minimum: int, timeout: float = 15) -> list[JaegerSpan]:
        """The trace's spans in Jaeger, once it holds at least ``minimum``."""
        return jaeger_trace(self.stack.endpoints.jaeger, trace_id, minimum, timeout)


def jaeger_trace(jaeger: str, trace_id: str, minimum: int, timeout: float = 15) -> list[JaegerSpan]:
    """The spans of a trace in the Jaeger at ``jaeger``, once it holds at least ``minimum``."""

    def spans() -> list[JaegerSpan]:
        response = httpx.get(f"{jaeger}/api/v3/traces/{trace_id}", timeout=5)
        if response.status_code != 200:  # 404 until the trace arrives
            return []
        found = [JaegerSpan(span, attributes(rs["resource"]["attributes"]))
                 for rs in response.json()["result"]["resourceSpans"]
                 for ss in rs["scopeSpans"] for span in ss["spans"]]
        return found if len(found) >= minimum else []

    return wait_until(spans, timeout, f"{minimum} spans of trace {trace_id} in Jaeger", 0.1)


@dataclass
class JaegerSpan:
    """A span as Jaeger's ``/api/v3`` answers it (OTLP JSON)."""

    raw: dict[str, Any]
    resource: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.raw["name"])

    @property
    def kind(self) -> int:
        """OTLP's ``SpanKind``: 2 server, 3 client."""
        return int(self.raw["kind"])

    @property
    def span_id(self) -> str:
        return str(self.raw["spanId"])

    @property
    def parent(self) -> str:
        return str(self.raw.get("parentSpanId", ""))

    @property
    def attributes(self) -> dict[str, Any]:
        return attributes(self.raw.get("attributes", []))

    @property
    def failed(self) -> bool:
        return bool(self.raw.get("status", {}).get("code") == 2)  # STATUS_CODE_ERROR


def attributes(items: list[dict[str, Any]]) -> dict[str, Any]:
    """OTLP JSON attributes as plain values (``intValue`` is a string in OTLP JSON)."""
    out: dict[str, Any] = {}
    for item in items:
        [(kind, value)] = item["value"].items()
        out[item["key"]] = int(value) if kind == "intValue" else value
    return out


SERVER, CLIENT = 2, 3


def reported(response: httpx.Response) -> tuple[str, str]:
    """(trace id, server span id) of the ``traceresponse`` header: ``00-{trace}-{span}-{flags}``."""
    version, trace_id, span_id, _ = response.headers["traceresponse"].split("-")
    assert version == "00"
    return trace_id, span_id


@contextlib.contextmanager
def traced_gateway(workdir: Path, gateway_env: dict[str, str], sdk_env: Mapping[str, str] = MappingProxyType({}),
                   ) -> Iterator[Traced]:
    """The stack (``python -m app stack up``'s programs and log sink) and a gateway exporting to it;
    ``sdk_env`` adds ``OTEL_*`` variables."""
    options = Options(scrape_gateway=False, collector_env={"OTELCOL_BATCH_TIMEOUT": f"{EXPORT_DELAY_MS}ms"})
    with running(UNSCRAPED, workdir, options) as stack, pytest.MonkeyPatch.context() as env:
        for name, value in {**otlp_environment(stack.endpoints.otlp_http), **sdk_env}.items():
            env.setenv(name, value)  # the SDK reads them from the environment
        with running_gateway(gateway_env) as gateway:
            yield Traced(gateway, stack)
