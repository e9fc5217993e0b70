"""``/health/...``: the seed's health endpoints, plus liveness and readiness.

The routes only: the reports are built in :mod:`app.monitoring.reports` (how ``/health/``
aggregates is told there). The answer is 503 only when the gateway is unhealthy.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from litestar import Request, Response, Router, get
from litestar.exceptions import NotFoundException, ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, QueryParameter

from ..config import format_duration, parse_duration
from ..monitoring import Trends, reports
from ..monitoring.schemas import (
    AlertsReport,
    Configuration,
    Liveness,
    MetricsReport,
    OverallHealth,
    ProviderDetail,
    Readiness,
    ServicesHealth,
    StatusOverview,
)
from ..monitoring.slo_report import SloReport
from ..monitoring.trends import TrendError
from ..monitoring.usage import UsageReport
from ..providers.service_manager import ServiceManager
from ..resilience.auth import require_admin

_STARTED = datetime.now(UTC)


def _manager(request: Request[Any, Any, Any]) -> ServiceManager:
    found: ServiceManager = request.app.state.service_manager
    return found


def _window(text: str | None, default: float, horizon: float) -> float:
    if text is None:
        return default
    try:
        seconds = parse_duration(text)
    except ValueError:
        raise ValidationException(f"window: expected a duration such as 5m or 1h, got {text!r}") from None
    if not 0 < seconds <= horizon:
        raise ValidationException(f"window: must be positive and at most {format_duration(horizon)}")
    return seconds


# -- endpoints -----------------------------------------------------------------------------------

@get("/", summary="Overall health (healthy, degraded or unhealthy) with reasons and components",
     responses={503: ResponseSpec(OverallHealth, description="Unhealthy: no provider can serve")})
async def overall_health(request: Request[Any, Any, Any]) -> Response[OverallHealth]:
    body = reports.overall_health(_manager(request))
    return Response(body, status_code=503 if body.status == "unhealthy" else 200)


@get("/live", summary="Liveness: 200 while the process runs; never depends on providers", sync_to_thread=False)
def live() -> Liveness:
    now = datetime.now(UTC)
    return Liveness("alive", _STARTED, (now - _STARTED).total_seconds())


@get("/ready", summary="Readiness: 200 once started with at least one provider able to serve, else 503",
     sync_to_thread=False, responses={503: ResponseSpec(Readiness, description="Not ready")})
def ready(request: Request[Any, Any, Any]) -> Response[Readiness]:
    body = reports.readiness(_manager(request))
    return Response(body, status_code=200 if body.ready else 503)


@get("/services", summary="Every provider with each operation: breaker, success rate, p95, errors, headroom")
async def services(request: Request[Any, Any, Any]) -> ServicesHealth:
    return await reports.services(_manager(request))


@get("/services/{provider:str}", summary="One provider's health; 404 for an unknown provider")
async def service(request: Request[Any, Any, Any], provider: FromPath[str]) -> ProviderDetail:
    manager = _manager(request)
    health = reports.health(manager)
    if provider not in health.providers:
        raise NotFoundException(f"unknown provider {provider!r}; known: {', '.join(health.providers)}")
    return await reports.provider_detail(manager, health, provider)


@get("/metrics", summary="The recorder's per-service metrics over the window, and the seed's summary",
     sync_to_thread=False)
def metrics(
    request: Request[Any, Any, Any],
    window: Annotated[str | None, QueryParameter(description="Prometheus duration; default: the alert window")] = None,
) -> MetricsReport:
    manager = _manager(request)
    settings = manager.settings
    return reports.metrics(manager, _window(window, settings.alerts.window, settings.monitoring_horizon))


@get("/usage", summary="Calls, billed units and cost per provider operation and per client over the window "
     "(the fleet's with shared state)", sync_to_thread=False)
def usage(
    request: Request[Any, Any, Any],
    window: Annotated[str | None, QueryParameter(description="Prometheus duration; default: the alert window")] = None,
) -> UsageReport:
    manager = _manager(request)
    settings = manager.settings
    seconds = _window(window, settings.alerts.window, settings.monitoring_horizon)
    return manager.monitoring.usage_report(seconds, format_duration(seconds))


@get("/alerts", summary="Pending and firing alerts, and recently resolved ones", sync_to_thread=False)
def alerts(
    request: Request[Any, Any, Any],
    severity: Annotated[Literal["warning", "critical"] | None, QueryParameter()] = None,
    alert_type: Annotated[Literal["warning", "critical"] | None,
                          QueryParameter(description="The seed's name for severity")] = None,
) -> AlertsReport:
    return reports.alerts(_manager(request).monitoring, severity or alert_type)


@get("/trends/{service:str}", summary="Time series and direction of a provider (sarvam) or operation (sarvam.tts)",
     sync_to_thread=False)
def trends(
    request: Request[Any, Any, Any],
    service: FromPath[str],
    window: Annotated[
        str | None, QueryParameter(description="Prometheus duration; default 1h (or the horizon)")] = None,
    step: Annotated[str, QueryParameter(description="Prometheus duration, a multiple of the recorder's bucket")] = "5m",
) -> Trends:
    manager = _manager(request)
    settings = manager.settings
    default_window = format_duration(min(3600.0, settings.monitoring_horizon))
    try:
        return manager.monitoring.trends(service, window or default_window, step, manager.operations)
    except KeyError:
        raise NotFoundException(f"unknown service {service!r}; use a provider such as 'sarvam' "
                                "or an operation such as 'sarvam.tts'") from None
    except TrendError as exc:
        raise ValidationException(str(exc)) from None


@get("/slo", summary="Per provider operation: objectives, SLI, error budget left and burn rate in each window",
     sync_to_thread=False)
def slo(request: Request[Any, Any, Any]) -> SloReport:
    manager = _manager(request)
    keys = sorted(set(manager.operations) | set(manager.monitoring.recorder.keys()))
    return manager.monitoring.slo_report(keys)


@get("/status", summary="Compact overview: overall status, providers with breaker states, firing alerts")
async def status(request: Request[Any, Any, Any]) -> StatusOverview:
    return reports.status_overview(_manager(request))


@get("/configuration", summary="Settings with secrets redacted; the admin key when one is set, off in "
     "production without one", sync_to_thread=False, guards=[require_admin])
def configuration(request: Request[Any, Any, Any]) -> Configuration:
    return reports.configuration(_manager(request).settings)


router = Router(
    path="/health",
    route_handlers=[overall_health, live, ready, services, service, metrics, usage, alerts, trends, slo,
                    status, configuration],
    tags=["health"],
)
