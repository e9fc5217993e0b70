"""``GET /metrics``: the Prometheus text exposition of the gateway's OpenTelemetry metrics."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, Router, get

from ..resilience.auth import require_metrics_auth
from ..telemetry import Telemetry
from .problems import problem

MEDIA_TYPE = "text/plain; version=0.0.4"
"""Prometheus text format 0.0.4; Litestar appends ``; charset=utf-8`` to text types."""


@get("/", include_in_schema=False, sync_to_thread=False, guards=[require_metrics_auth])
def metrics(request: Request[Any, Any, Any]) -> Response[Any]:
    """404 when metrics are off; the admin key when ``METRICS_REQUIRE_AUTH`` is set."""
    telemetry: Telemetry = request.app.state.service_manager.telemetry
    if not telemetry.metrics_enabled:
        return problem(404, "Not Found", "metrics are disabled on this gateway", "not_found")
    return Response(telemetry.metrics_text(), media_type=MEDIA_TYPE)


router = Router(path="/metrics", route_handlers=[metrics])
