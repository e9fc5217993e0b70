"""OTLP settings: which signals go out over OTLP, and with which protocol, as the ``OTEL_*``
environment says.

* Protocol: ``http/protobuf`` unless ``OTEL_EXPORTER_OTLP_[TRACES_|METRICS_|LOGS_]PROTOCOL`` says
  ``grpc``. That is the specification's default (the Python SDK's own auto-configuration still
  defaults to gRPC); the collector listens for it on 4318.
* OTLP is used for a signal when an endpoint is set (``OTEL_EXPORTER_OTLP_ENDPOINT`` or the
  per-signal variable) and ``OTEL_TRACES_EXPORTER`` / ``OTEL_METRICS_EXPORTER`` /
  ``OTEL_LOGS_EXPORTER``, when set, name ``otlp``. The exporters read the remaining
  ``OTEL_EXPORTER_OTLP_*`` variables themselves.
"""

from __future__ import annotations

import os
from typing import Any

from opentelemetry.metrics import MeterProvider
from opentelemetry.sdk._logs.export import LogRecordExporter
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.trace.export import SpanExporter

from ..config import ConfigError, Settings


def _env(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


def _otlp_protocol(signal: str) -> str:
    name = f"OTEL_EXPORTER_OTLP_{signal}_PROTOCOL"
    if _env(name) is None:
        name = "OTEL_EXPORTER_OTLP_PROTOCOL"
    protocol = _env(name) or "http/protobuf"
    if protocol not in ("grpc", "http/protobuf"):
        raise ConfigError(name, "grpc or http/protobuf", protocol)
    return protocol


def _otlp_wanted(signal: str) -> bool:
    exporters = _env(f"OTEL_{signal}_EXPORTER")
    if exporters is not None and "otlp" not in [e.strip() for e in exporters.split(",")]:
        return False
    return _env("OTEL_EXPORTER_OTLP_ENDPOINT") is not None or _env(f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT") is not None


def otlp_span_exporter(meter_provider: MeterProvider) -> SpanExporter | None:
    """``meter_provider`` gets the exporter's own metrics (with ``OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED``)."""
    if not _otlp_wanted("TRACES"):
        return None
    if _otlp_protocol("TRACES") == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter

        return GrpcSpanExporter(meter_provider=meter_provider)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(meter_provider=meter_provider)


def otlp_log_exporter(meter_provider: MeterProvider) -> LogRecordExporter | None:
    if not _otlp_wanted("LOGS"):
        return None
    if _otlp_protocol("LOGS") == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogExporter

        return GrpcLogExporter(meter_provider=meter_provider)
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter

    return OTLPLogExporter(meter_provider=meter_provider)


def otlp_metric_reader(settings: Settings) -> MetricReader | None:
    if not _otlp_wanted("METRICS"):
        return None
    exporter: Any
    if _otlp_protocol("METRICS") == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
            OTLPMetricExporter as GrpcMetricExporter,
        )

        exporter = GrpcMetricExporter()
    else:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

        exporter = OTLPMetricExporter()
    # OTEL_METRIC_EXPORT_INTERVAL (ms), read by the reader, wins over METRICS_INTERVAL (s).
    interval = None if _env("OTEL_METRIC_EXPORT_INTERVAL") else settings.metrics_interval * 1000
    return PeriodicExportingMetricReader(exporter, export_interval_millis=interval)
