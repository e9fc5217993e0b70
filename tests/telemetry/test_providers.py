"""Provider ownership: one pair per Telemetry, the global pair set once and silently, shutdown."""

from __future__ import annotations

import logging

import pytest
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from app.config import load_settings
from app.telemetry import Telemetry

pytestmark = pytest.mark.unit


def test_each_telemetry_owns_its_providers_and_globals_are_set_without_warnings(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    spans_a, spans_b = InMemorySpanExporter(), InMemorySpanExporter()
    a = Telemetry(load_settings({}), span_exporter=spans_a)
    b = Telemetry(load_settings({}), span_exporter=spans_b)
    try:
        assert a.tracer_provider is not b.tracer_provider and a.meter_provider is not b.meter_provider
        with a.tracer.start_as_current_span("only a"):
            pass
        assert [s.name for s in spans_a.get_finished_spans()] == ["only a"]
        assert spans_b.get_finished_spans() == ()
        # Some Telemetry of this process became the global pair, for third-party instrumentation.
        assert isinstance(trace.get_tracer_provider(), TracerProvider)
        assert isinstance(metrics.get_meter_provider(), MeterProvider)
    finally:
        a.shutdown()
        b.shutdown()
    assert not [r for r in caplog.records if r.name.startswith("opentelemetry")], caplog.text


def test_second_shutdown_does_nothing(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    reader = InMemoryMetricReader()
    telemetry = Telemetry(load_settings({}), metric_readers=[reader])
    telemetry.instruments.characters.add(3, {"provider": "sarvam", "operation": "tts"})
    assert reader.get_metrics_data() is not None
    telemetry.shutdown()
    telemetry.shutdown()
    assert not caplog.records, caplog.text
