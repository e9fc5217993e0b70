"""``GET /metrics``: format, the ENABLE_METRICS switch, admin auth; OTEL_SDK_DISABLED."""

from __future__ import annotations

import httpx
import pytest

from .conftest import Gateway


def test_metrics_are_prometheus_text_0_0_4(gateway: Gateway) -> None:
    with gateway() as (client, _):
        client.post("/translate", json={"input": "x"})
        response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert "# TYPE provider_client_request_duration_seconds histogram" in response.text
    assert 'target_info{deployment_environment_name="development"' in response.text


def test_metrics_are_404_when_disabled(gateway: Gateway) -> None:
    with gateway({"ENABLE_METRICS": "false"}) as (client, harness):
        assert client.post("/translate", json={"input": "x"}).status_code == 201
        response = client.get("/metrics")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["error_type"] == "not_found"
    assert not harness.telemetry.metrics_enabled
    # The other readers still work: only the Prometheus endpoint is off.
    assert harness.reader.get_metrics_data() is not None


@pytest.mark.parametrize("header", [None, "Bearer wrong-key", "Basic admin-secret-1", "admin-secret-1"])
def test_metrics_need_the_admin_key_when_configured(gateway: Gateway, header: str | None) -> None:
    environ = {"METRICS_REQUIRE_AUTH": "true", "ADMIN_API_KEY": "admin-secret-1"}
    with gateway(environ) as (client, _):
        response = client.get("/metrics", headers={"authorization": header} if header else {})
        client.post("/translate", json={"input": "x"})
        allowed = client.get("/metrics", headers={"authorization": "Bearer admin-secret-1"})
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "admin-secret-1" not in response.text
    assert allowed.status_code == 200 and "target_info" in allowed.text


def test_admin_key_alone_does_not_close_metrics(gateway: Gateway) -> None:
    with gateway({"ADMIN_API_KEY": "admin-secret-1"}) as (client, _):
        assert client.get("/metrics").status_code == 200


def test_sdk_disabled_records_and_exports_nothing_but_the_gateway_works(
    gateway: Gateway, sim: httpx.Client, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    with gateway() as (client, harness):
        assert client.post("/translate", json={"input": "x"}).status_code == 201
        assert client.post("/tts", json={"text": "namaste"}).content[:4] == b"RIFF"
        assert client.get("/metrics").status_code == 404
    assert harness.spans.get_finished_spans() == ()
    data = harness.reader.get_metrics_data()
    assert data is None or not data.resource_metrics
    assert [r["traceparent"] for r in sim.get("/requests").json()] == [None, None]
