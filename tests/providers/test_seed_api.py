"""The seed's Python API: service_manager and monitoring, as the seed's examples use them."""

from __future__ import annotations

import pytest

from app.config import load_settings
from app.monitoring import monitoring
from app.monitoring.status import HealthStatus
from app.providers.service_manager import ServiceManager, service_manager, set_current
from tests.gateway import running_gateway


def test_service_manager_in_a_running_gateway() -> None:
    with running_gateway() as gw:
        assert service_manager.get_service("sarvam", "tts") is gw.manager.get_service("sarvam", "tts")
        translation = service_manager.get_service("sarvam", "translation")  # the seed's name
        assert translation.operation == "translate" and translation.provider == "sarvam"
        with pytest.raises(KeyError, match=r"no service sarvam\.chat"):
            service_manager.get_service("sarvam", "chat")
        assert gw.translate().status_code == 200
        sarvam = service_manager.get_metrics_summary()["sarvam"]
        assert not isinstance(sarvam, HealthStatus)  # that is the "monitoring" entry
        assert sarvam["mode"] == "simulated"
        assert sarvam["breakers"]["translate"] == "closed"
        assert sarvam["last_health_check"] is not None and sarvam["last_health_check"]["status"] == "up"


async def test_health_check_all_and_the_seed_monitoring_calls() -> None:
    port_less = load_settings({"SARVAM_BASE_URL": "http://127.0.0.1:9", "HEALTH_CHECK_INTERVAL": "3600"})
    manager = ServiceManager(port_less)
    set_current(manager)
    try:
        results = await service_manager.health_check_all()
        assert results["sarvam"]["status"] == "down" and results["sarvam"]["error_type"] == "connection"
        assert results["rag"]["status"] == "up"
        # Active checks are not client traffic: nothing recorded as requests.
        assert manager.monitoring.get_health_status().providers == {}
        monitoring.record_request(service="sarvam", success=True, latency_ms=150.5, error_type=None)
        monitoring.record_request(service="sarvam.tts", success=False, latency_ms=900, error_type="timeout")
        status = monitoring.get_health_status()
        assert set(status.providers) == {"sarvam"}
        tts = status.providers["sarvam"].operations["tts"]
        assert tts.requests == 1 and tts.errors == {"timeout": 1}
        assert monitoring.get_alerts(alert_type="critical") == []
    finally:
        await manager.stop()
