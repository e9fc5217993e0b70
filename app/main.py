"""``create_app()``: the Litestar app factory."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar, Router
from litestar.handlers import HTTPRouteHandler

from . import __version__
from .api import docs, dropin, health, metrics, status, v1
from .api.problems import EXCEPTION_HANDLERS, document_problems
from .api.uploads import UploadSpool
from .config import Settings, get_settings
from .logs import lifecycle
from .logs.access import AccessLog
from .providers.service_manager import ServiceManager, set_current
from .resilience.auth import require_admin_on_sim_control
from .simulator import create_simulator_router

JSON_BODY_LIMIT = 4 * 1024 * 1024
"""Bytes a JSON request body may have (texts, chat messages, documents); uploads have their own."""
MULTIPART_OVERHEAD = 1024 * 1024


def create_app(settings: Settings | None = None) -> Litestar:
    """The gateway; the simulator is mounted under ``/_sim`` when any provider is simulated."""
    settings = settings or get_settings()
    manager = ServiceManager(settings)
    set_current(manager)
    uploads = UploadSpool(settings.upload_spool_dir, settings.upload_idle_timeout, settings.upload_deadline)

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        started = time.monotonic()
        manager.telemetry.attach_log_handler()
        lifecycle.started(settings)
        uploads.sweep()
        shared = manager.pipeline.shared
        if shared is not None:
            await shared.start()
        await manager.start()
        try:
            yield
        finally:
            lifecycle.stopping(time.monotonic() - started)
            uploads.stop()
            await manager.stop()
            if shared is not None:
                await shared.aclose()

    route_handlers: list[object] = [v1.router, *dropin.routers(), health.router, metrics.router, status.router,
                                    docs.router]
    if any(svc.is_simulated for svc in settings.services.values()):
        # Its provider routes are the gateway's own upstream; its control routes are the operator's.
        route_handlers.append(Router("/", route_handlers=[create_simulator_router()],
                                     guards=[require_admin_on_sim_control]))
    app = Litestar(
        route_handlers=route_handlers,  # type: ignore[arg-type]
        lifespan=[lifespan],
        exception_handlers=EXCEPTION_HANDLERS,
        openapi_config=docs.openapi_config("AI provider gateway", __version__),
        # The access log inside the server span, so that its lines carry the request's trace id.
        middleware=[*manager.telemetry.server_middleware(), *([AccessLog] if settings.access_log else [])],
        request_max_body_size=JSON_BODY_LIMIT,
        logging_config=None,  # keep the JSON/text handlers of app.logging_setup
        debug=False,
    )
    app.state.service_manager = manager
    app.state.upload_spool = uploads
    _allow_uploads(app, settings)
    document_problems(app)
    return app


def _allow_uploads(app: Litestar, settings: Settings) -> None:
    """Let ``/v1/stt`` take the largest configured audio, and each drop-in upload route its own
    provider's (the handlers are this app's own copies); Deepgram takes the audio as the body."""
    sarvam, deepgram = (settings.get_service_config(p).max_audio_size_bytes for p in ("sarvam", "deepgram"))
    for path, limit in (("/v1/stt", max(sarvam, deepgram) + MULTIPART_OVERHEAD),
                        ("/sarvam/speech-to-text", sarvam + MULTIPART_OVERHEAD), ("/deepgram/v1/listen", deepgram)):
        handler = app.route_handler_method_map[path]["POST"]
        assert isinstance(handler, HTTPRouteHandler)
        handler.request_max_body_size = limit
