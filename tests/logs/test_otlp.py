"""Log records over OTLP to a receiver started by the test: event names, fields, trace context."""

from __future__ import annotations

import os

import pytest

from app.stack.logsink import attributes
from tests.telemetry.otlp_receiver import grpc_receiver, http_receiver

from .capture import logged_gateway


@pytest.fixture(autouse=True)
def _no_otel_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("OTEL_"):
            monkeypatch.delenv(name)


def test_events_go_out_as_log_records_carrying_the_failed_calls_trace(monkeypatch: pytest.MonkeyPatch) -> None:
    with http_receiver() as (endpoint, received):
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
        with logged_gateway({"FALLBACKS_ENABLED": "false"}) as (gw, _):
            gw.fault("sarvam", operation="translate", error_rate=1.0, status_code=500)
            problem = gw.translate()
        # Leaving the block stopped the gateway, which flushed the log records.
    assert problem.status_code == 502
    trace_id = problem.json()["trace_id"]
    assert "/v1/logs" in received.paths
    records = received.log_records()
    by_name = {record.event_name: (resource, record) for resource, record in records}
    assert {"gateway.start", "provider.call.failed", "gateway.stop"} <= set(by_name)
    resource, failed = by_name["provider.call.failed"]
    assert failed.trace_id.hex() == trace_id and len(failed.span_id) == 8
    assert failed.severity_text == "WARN" and failed.body.string_value.startswith("sarvam.translate failed")
    fields = attributes(failed.attributes)
    assert {k: fields[k] for k in ("provider", "operation", "error_type", "status", "attempt", "fallback")} == {
        "provider": "sarvam", "operation": "translate", "error_type": "upstream_5xx", "status": 500,
        "attempt": 1, "fallback": False}
    assert "trace_id" not in fields and "event.name" not in fields  # carried by the record itself
    assert resource["service.name"] == "ai-gateway"
    start = attributes(by_name["gateway.start"][1].attributes)
    assert start["config"]["services"]["sarvam"]["mode"] == "simulated"
    assert by_name["gateway.start"][1].trace_id == b""  # logged outside any request


def test_grpc_when_the_protocol_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    with grpc_receiver() as (endpoint, received):
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_LOGS_PROTOCOL", "grpc")
        monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
        monkeypatch.setenv("OTEL_METRICS_EXPORTER", "none")
        with logged_gateway():
            pass
    assert {r.event_name for _, r in received.log_records()} == {"gateway.start", "gateway.stop"}


def test_another_logs_exporter_named_means_no_otlp_logs(monkeypatch: pytest.MonkeyPatch) -> None:
    with http_receiver() as (endpoint, received):
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
        monkeypatch.setenv("OTEL_LOGS_EXPORTER", "console")
        with logged_gateway() as (gw, lines):
            assert gw.translate().status_code == 200
    assert "/v1/traces" in received.paths and "/v1/logs" not in received.paths
    assert lines.events("gateway.start")  # the lines are written all the same
