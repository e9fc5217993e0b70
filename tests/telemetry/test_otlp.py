"""OTLP export of traces and metrics to receivers started by the tests, and the resource."""

from __future__ import annotations

import uuid

import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from app.calls import LATENCY_BUCKETS
from app.config import ConfigError, load_settings
from app.stack.logsink import attributes
from app.telemetry import Telemetry

from .conftest import Gateway
from .otlp_receiver import Received, grpc_receiver, http_receiver


def _provider_call(gateway: Gateway, environ: dict[str, str] | None = None) -> None:
    with gateway(environ) as (client, _):
        assert client.post("/translate", json={"input": "hello"}).status_code == 201
    # Leaving the block shuts the telemetry down, which flushes both signals.


def _check_export(received: Received) -> None:
    spans = received.spans()
    [(resource, provider)] = [(r, s) for r, s in spans if s.name == "translate sarvam"]
    assert provider.kind == Span.SPAN_KIND_CLIENT
    assert attributes(provider.attributes)["provider"] == "sarvam"
    assert resource["service.name"] == "ai-gateway" and resource["deployment.environment.name"] == "development"
    http = [s for _, s in spans if s.parent_span_id == provider.span_id]
    assert len(http) == 1 and http[0].trace_id == provider.trace_id

    [duration] = received.metric("provider.client.request.duration")
    assert duration.unit == "s"
    [point] = duration.histogram.data_points
    assert tuple(point.explicit_bounds) == LATENCY_BUCKETS and point.count == 1
    assert attributes(point.attributes) == {"provider": "sarvam", "operation": "translate", "outcome": "success"}


def test_otlp_http_protobuf_is_the_default(gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    with http_receiver() as (endpoint, received):
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
        _provider_call(gateway)
    assert {"/v1/traces", "/v1/metrics"} <= set(received.paths)
    _check_export(received)


def test_otlp_grpc_when_asked(gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    with grpc_receiver() as (endpoint, received):
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
        _provider_call(gateway)
    _check_export(received)


def test_per_signal_endpoint_and_exporter_switch(gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    with http_receiver() as (endpoint, received):
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", endpoint + "/custom/metrics")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", endpoint + "/custom/traces")
        monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
        _provider_call(gateway)
    assert set(received.paths) == {"/custom/metrics"}


def test_metrics_interval_drives_periodic_export(gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    with http_receiver() as (endpoint, received):
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
        with gateway({"METRICS_INTERVAL": "0.2"}) as (client, _):
            client.post("/translate", json={"input": "x"})
            assert received.wait(lambda r: bool(r.metric("provider.client.request.duration")), timeout=5)


def test_otel_metric_export_interval_wins_over_metrics_interval(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch,
) -> None:
    with http_receiver() as (endpoint, received):
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
        monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", "200")
        with gateway({"METRICS_INTERVAL": "3600"}) as (client, _):
            client.post("/translate", json={"input": "x"})
            assert received.wait(lambda r: bool(r.metric("provider.client.request.duration")), timeout=5)


@pytest.mark.unit
def test_unknown_protocol_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json")
    with pytest.raises(ConfigError, match="OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"):
        Telemetry(load_settings({}))


@pytest.mark.unit
def test_resource_defaults_and_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    first = Telemetry(load_settings({"ENVIRONMENT": "production"}))
    second = Telemetry(load_settings({}))
    try:
        attrs = dict(first.resource.attributes)
        assert attrs["service.name"] == "ai-gateway" and attrs["service.version"] == "0.1.0"
        assert attrs["deployment.environment.name"] == "production"
        uuid.UUID(str(attrs["service.instance.id"]))
        assert attrs["service.instance.id"] != second.resource.attributes["service.instance.id"]
    finally:
        first.shutdown()
        second.shutdown()

    monkeypatch.setenv("OTEL_SERVICE_NAME", "voice-gateway")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "service.instance.id=pod-7,team=voice")
    telemetry = Telemetry(load_settings({}))
    telemetry.shutdown()
    attrs = dict(telemetry.resource.attributes)
    assert (attrs["service.name"], attrs["service.instance.id"], attrs["team"]) == ("voice-gateway", "pod-7", "voice")
