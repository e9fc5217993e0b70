"""Every /health endpoint over real HTTP, against the gateway and its simulator."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient

from app.calls import CallContext, GatewayError
from app.config import load_settings
from app.main import create_app
from app.monitoring import monitoring
from app.providers.service_manager import ServiceManager

from ..gateway import Gateway, running_gateway
from ..support import wait_until

FAST_ALERTS = {"ALERT_WINDOW": "30s", "ALERT_FOR": "200ms", "ALERT_EVAL_INTERVAL": "100ms", "ALERT_MIN_REQUESTS": "5"}
PROVIDERS = {"sarvam", "deepgram", "openai", "rag"}


@pytest.fixture(scope="module")
def gateway() -> Iterator[Gateway]:
    with running_gateway(FAST_ALERTS) as running:
        yield running


def get(gateway: Gateway, path: str, status: int = 200, **params: Any) -> Any:
    response = gateway.client.get(path, params=params)
    assert response.status_code == status, response.text
    return response.json()


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert {"type", "title", "status", "detail", "error_type"} <= body.keys() and body["status"] == status
    return body


def test_live_ready_and_overall_health(gateway: Gateway) -> None:
    live = get(gateway, "/health/live")
    assert live["status"] == "alive" and live["uptime_seconds"] >= 0
    ready = get(gateway, "/health/ready")
    assert ready == {"ready": True, "reasons": [], "serving_providers": sorted(PROVIDERS)}
    health = get(gateway, "/health/")
    assert set(health) == {"status", "timestamp", "reasons", "components", "firing_alerts", "pending_alerts",
                           "view", "fleet"}
    # Without STATE_REDIS_URL the numbers are this process's, and it says so.
    assert health["view"] == "local" and health["fleet"]["view"] == "local"
    assert "STATE_REDIS_URL" in health["fleet"]["reason"]
    assert [r["replica"] for r in health["fleet"]["replicas"]] == [health["fleet"]["replica"]]
    assert health["components"].keys() == PROVIDERS | {"state"}
    assert health["components"]["state"]["backend"] == "memory"
    assert health["components"]["sarvam"]["mode"] == "simulated" and health["components"]["sarvam"]["can_serve"]


def test_services_and_one_provider(gateway: Gateway) -> None:
    services = get(gateway, "/health/services")
    assert services["window"] == "30s" and services["providers"].keys() == PROVIDERS
    sarvam = get(gateway, "/health/services/sarvam")
    assert set(sarvam) == {"provider", "mode", "status", "can_serve", "reasons", "rate_limit",
                           "concurrency", "event_loop_lag", "last_active_check", "operations"}
    assert sarvam["concurrency"] == {"limit": 256, "in_flight": 0, "utilisation": 0.0, "by_operation": {}}
    assert sarvam["operations"].keys() == {"translate", "tts", "stt"}
    assert sarvam["rate_limit"]["limit"] == 60 and 0 <= sarvam["rate_limit"]["remaining"] <= 60
    assert sarvam["last_active_check"]["status"] in ("up", "down")
    translate = sarvam["operations"]["translate"]
    assert {"service", "status", "breaker_state", "success_rate", "latency_p95_ms", "errors", "rejections",
            "last_error", "requests"} <= translate.keys()
    problem = assert_problem(gateway.client.get("/health/services/nobody"), 404)
    assert "nobody" in problem["detail"] and problem["error_type"] == "not_found"


def test_metrics_status_configuration(gateway: Gateway) -> None:
    metrics = get(gateway, "/health/metrics", window="1m")
    assert metrics["window"] == "1m" and "sarvam.translate" in metrics["services"]
    entry = metrics["services"]["sarvam.translate"]
    assert [b["le"] for b in entry["latency_histogram"]][-3:] == [30.0, 60.0, None]
    assert set(metrics["summary"]) >= PROVIDERS
    assert metrics["view"] == "local" and len(metrics["fleet"]["replicas"]) == 1
    assert_problem(gateway.client.get("/health/metrics", params={"window": "forever"}), 400)
    status = get(gateway, "/health/status")
    assert set(status) == {"status", "timestamp", "providers", "firing_alerts", "view"}
    assert status["providers"]["sarvam"]["breakers"].keys() == {"translate", "tts", "stt"}
    config = get(gateway, "/health/configuration")
    assert config["environment"] == "development" and config["services"]["sarvam"]["mode"] == "simulated"
    assert config["alerts"]["window"] == 30.0


def test_alerts_and_trends_validate_their_parameters(gateway: Gateway) -> None:
    queries: list[dict[str, Any]] = [{}, {"severity": "critical"}, {"alert_type": "warning"}]
    for params in queries:
        assert set(get(gateway, "/health/alerts", **params)) == {"alerts", "resolved", "firing", "pending", "view"}
    assert_problem(gateway.client.get("/health/alerts", params={"severity": "info"}), 400)
    assert_problem(gateway.client.get("/health/alerts", params={"alert_type": "page"}), 400)
    trends = get(gateway, "/health/trends/sarvam.translate", window="10m", step="1m")
    assert set(trends) == {"service", "window", "step", "points", "direction", "view"}
    assert trends["view"] == "local"
    assert len(trends["points"]) == 10 and set(trends["direction"]) == {"success_rate", "latency_p95", "availability"}
    assert set(trends["points"][0]) == {"timestamp", "requests", "success_rate", "availability", "latency_avg_ms",
                                        "latency_p50_ms", "latency_p95_ms"}
    assert get(gateway, "/health/trends/sarvam")["window"] == "1h"
    assert_problem(gateway.client.get("/health/trends/nobody"), 404)
    assert_problem(gateway.client.get("/health/trends/sarvam.sing"), 404)
    assert_problem(gateway.client.get("/health/trends/sarvam", params={"step": "1s"}), 400)
    assert_problem(gateway.client.get("/health/trends/sarvam", params={"window": "5 minutes"}), 400)


def test_openapi_documents_the_health_shapes(gateway: Gateway) -> None:
    schema = get(gateway, "/schema/openapi.json")
    names = set(schema["components"]["schemas"])
    assert {"OverallHealth", "Readiness", "ServicesHealth", "ProviderDetail", "MetricsReport", "AlertsReport",
            "Alert", "Trends", "TrendPoint", "StatusOverview", "Configuration"} <= names


def test_injected_faults_fire_alerts_and_degrade_health() -> None:
    with running_gateway({**FAST_ALERTS, "SARVAM_MAX_FAILURES": "5"}) as gateway:
        gateway.fault("sarvam", operation="translate", error_rate=1.0, status_code=500)
        for _ in range(8):
            assert gateway.translate().status_code == 200  # served by the fallback, openai

        def firing() -> set[tuple[str, str]]:
            alerts = get(gateway, "/health/alerts")["alerts"]
            return {(a["name"], a["severity"]) for a in alerts if a["state"] == "firing"}

        expected = {("ProviderSuccessRateLow", "critical"), ("ProviderSuccessRateLow", "warning"),
                    ("ProviderCircuitOpen", "critical")}
        wait_until(lambda: expected <= firing(), 10, lambda: f"{expected} firing; got {firing()}", 0.05)
        critical = get(gateway, "/health/alerts", severity="critical")["alerts"]
        assert {a["severity"] for a in critical} == {"critical"}
        rate = next(a for a in critical if a["name"] == "ProviderSuccessRateLow")
        assert rate["labels"] == {"alertname": "ProviderSuccessRateLow", "provider": "sarvam",
                                  "operation": "translate", "severity": "critical"}
        assert (rate["value"], rate["threshold"]) == (0.0, 0.8) and rate["since"] <= rate["fired_at"]

        health = get(gateway, "/health/")
        assert health["status"] == "degraded"
        assert health["components"]["sarvam"]["status"] == "degraded"  # its TTS and STT still serve
        assert any("sarvam.translate" in reason for reason in health["reasons"])
        assert get(gateway, "/health/ready")["ready"] is True  # the other providers still serve
        translate = get(gateway, "/health/services/sarvam")["operations"]["translate"]
        assert translate["breaker_state"] == "open" and not translate["can_serve"]
        assert translate["status"] == "unhealthy"
        assert (translate["requests"], translate["errors"]) == (5, {"upstream_5xx": 5})
        assert translate["rejections"] == {"circuit_open": 3}
        assert translate["last_error"]["error_type"] == "upstream_5xx"
        metrics = get(gateway, "/health/metrics")["services"]["sarvam.translate"]
        assert (metrics["requests"], metrics["failures"], metrics["circuit_openings"]) == (5, 5, 1)
        assert get(gateway, "/health/status")["firing_alerts"]["critical"] >= 2
        points = get(gateway, "/health/trends/sarvam.translate", window="1m", step="10s")["points"]
        assert sum(p["requests"] for p in points) == 5 and points[-1]["availability"] < 1


@pytest.mark.unit
async def test_unhealthy_and_not_ready_when_no_provider_can_serve() -> None:
    env = {name + "_MAX_FAILURES": "1" for name in ("SARVAM", "DEEPGRAM", "OPENAI", "RAG")}
    app = create_app(load_settings({**env, "HEALTH_CHECK_INTERVAL": "3600", "ALERT_EVAL_INTERVAL": "3600"}))
    manager: ServiceManager = app.state.service_manager

    async def fail(_: CallContext) -> object:
        raise ConnectionError("refused")

    async with AsyncTestClient(app) as client:
        for provider, operation in manager.operations:
            service = manager.get_service(provider, operation)
            with pytest.raises(GatewayError):
                await manager.pipeline.call(service.spec(), fail)
        health = await client.get("/health/")
        assert health.status_code == 503 and health.json()["status"] == "unhealthy"
        ready = await client.get("/health/ready")
        assert ready.status_code == 503 and "no provider can serve" in ready.json()["reasons"][0]
        assert (await client.get("/health/live")).status_code == 200


@pytest.mark.parametrize(("admin_key", "authorization", "status"), [
    (None, None, 404), ("s3cret", None, 401), ("s3cret", "Bearer wrong", 401), ("s3cret", "Bearer s3cret", 200),
])
@pytest.mark.unit
async def test_configuration_in_production(admin_key: str | None, authorization: str | None, status: int) -> None:
    env = {"ENVIRONMENT": "production", "HEALTH_CHECK_INTERVAL": "3600", "SARVAM_API_KEY": "sk-live-secret",
           **({"ADMIN_API_KEY": admin_key} if admin_key else {})}
    async with AsyncTestClient(create_app(load_settings(env))) as client:
        headers = {"Authorization": authorization} if authorization else {}
        response = await client.get("/health/configuration", headers=headers)
        assert response.status_code == status, response.text
        assert "s3cret" not in response.text and "sk-live-secret" not in response.text
        if status == 200:
            assert response.json()["services"]["sarvam"]["api_key"] == "configured"


@pytest.mark.unit
def test_the_seed_style_monitoring_object_is_the_apps() -> None:
    app = create_app(load_settings({"HEALTH_CHECK_INTERVAL": "3600"}))
    manager: ServiceManager = app.state.service_manager
    monitoring.record_request(service="sarvam.tts", success=True, latency_ms=150.5)
    assert manager.monitoring.get_health_status().providers["sarvam"].operations["tts"].requests == 1
    assert monitoring.get_alerts(alert_type="critical") == []
