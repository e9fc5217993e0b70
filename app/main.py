"""``create_app()``: the Litestar app factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.openapi import OpenAPIConfig

from . import __version__
from .api import health, metrics, status, v1
from .api.problems import EXCEPTION_HANDLERS
from .config import Settings, get_settings
from .providers.service_manager import ServiceManager, set_current


def create_app(settings: Settings | None = None) -> Litestar:
    """The gateway; the simulator is mounted under ``/_sim`` when any provider is simulated."""
    settings = settings or get_settings()
    manager = ServiceManager(settings)
    set_current(manager)

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        await manager.start()
        try:
            yield
        finally:
            await manager.stop()

    route_handlers: list[object] = [v1.router, health.router, metrics.router, status.router]
    if any(svc.is_simulated for svc in settings.services.values()):
        from .simulator import create_simulator_router

        route_handlers.append(create_simulator_router())
    # Uploads may be as large as the largest configured audio; JSON bodies are far smaller.
    max_body = max(svc.max_audio_size_bytes for svc in settings.services.values()) + 1024 * 1024
    app = Litestar(
        route_handlers=route_handlers,  # type: ignore[arg-type]
        lifespan=[lifespan],
        exception_handlers=EXCEPTION_HANDLERS,
        openapi_config=OpenAPIConfig(title="AI provider gateway", version=__version__),
        plugins=manager.telemetry.litestar_plugins(),
        request_max_body_size=max_body,
        debug=False,
    )
    app.state.service_manager = manager
    return app
