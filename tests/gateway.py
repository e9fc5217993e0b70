"""A real gateway (simulator mounted) on a loopback port, for tests that go through HTTP."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

import httpx
from litestar import Litestar

from app.config import load_settings
from app.main import create_app

from .support import KEEPALIVE, LOOP_LAG_WARNING, LiveServer, free_port, wait_until

# Quiet, fast defaults for tests; each test overrides what it exercises.
TEST_ENV = {
    "HEALTH_CHECK_INTERVAL": "3600",
    "ALERT_EVAL_INTERVAL": "3600",
    "METRICS_INTERVAL": "3600",
    "ALERT_EVENT_LOOP_LAG_WARNING": LOOP_LAG_WARNING,
}


class Gateway:
    """The gateway's URL, its app and an HTTP client, plus helpers for the simulator."""

    def __init__(self, server: LiveServer, app: Litestar) -> None:
        self.url = server.url
        self.app = app
        self.manager = app.state.service_manager
        self.client = httpx.Client(base_url=server.url, timeout=30, limits=KEEPALIVE)

    def fault(self, provider: str, **fields: Any) -> None:
        response = self.client.put("/_sim/faults", json={"provider": provider, **fields})
        assert response.status_code == 200, response.text

    def clear_faults(self) -> None:
        self.client.delete("/_sim/faults").raise_for_status()

    def upstream_requests(self, provider: str | None = None) -> list[dict[str, Any]]:
        params = {"provider": provider} if provider else {}
        response = self.client.get("/_sim/requests", params=params)
        response.raise_for_status()
        data = response.json()
        return list(data["requests"] if isinstance(data, dict) else data)

    def clear_upstream_requests(self) -> None:
        self.client.delete("/_sim/requests").raise_for_status()

    def translate(self, text: str = "hello", target: str = "hi-IN", **extra: Any) -> httpx.Response:
        body = {"input": text, "source_language_code": "en-IN", "target_language_code": target, **extra}
        return self.client.post("/v1/translate", json=body)


@contextlib.contextmanager
def running_gateway(env: Mapping[str, str] | None = None) -> Iterator[Gateway]:
    """Start a gateway whose simulated providers are served by its own ``/_sim`` mount."""
    port = free_port()
    settings = load_settings({**TEST_ENV, **(env or {})}).with_simulator(f"http://127.0.0.1:{port}/_sim")
    app = create_app(settings)
    server = LiveServer(app, port).start()
    gateway = Gateway(server, app)
    if settings.admin_api_key is not None:  # the simulator's control routes need it then
        gateway.client.headers["authorization"] = f"Bearer {settings.admin_api_key.get_secret_value()}"
    # The first round of active health checks runs at start-up; let it finish so that tests
    # counting upstream requests see only their own.
    wait_until(lambda: len(gateway.manager.last_health_checks) >= len(gateway.manager.providers), 10,
               "the first health checks to finish")
    gateway.clear_upstream_requests()
    try:
        yield gateway
    finally:
        gateway.client.close()
        server.stop()
