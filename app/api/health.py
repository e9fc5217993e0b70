"""``/health/...``: the seed's health endpoints, plus liveness and readiness.

``/health/`` aggregates like Spring Boot Actuator (see :mod:`app.monitoring.status`): each
provider is a component (an open breaker, a firing alert or a failed active health check makes it
degraded; it is unhealthy when no operation can serve), and so is the shared ``state`` (memory or
Redis; degraded when Redis is down). The answer is 503 only when the gateway is unhealthy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from litestar import Request, Response, Router, get
from litestar.exceptions import NotFoundException, ValidationException
from litestar.params import FromPath, QueryParameter

from ..config import format_duration, parse_duration
from ..monitoring import Alert, Trends
from ..monitoring.fleet import FleetStatus, View
from ..monitoring.stats import Key, to_ms
from ..monitoring.status import ErrorRecord, HealthStatus, OperationHealth, Status, overall
from ..monitoring.trends import TrendError
from ..providers.service_manager import ServiceManager
from ..resilience.auth import require_admin

_STARTED = datetime.now(UTC)


@dataclass(frozen=True)
class ComponentHealth:
    status: Status
    reasons: list[str]
    can_serve: bool | None = None
    """Providers: whether at least one operation accepts calls."""
    mode: Literal["live", "simulated"] | None = None
    backend: Literal["memory", "redis"] | None = None
    """``state``: where rate limits and breaker state live."""


@dataclass(frozen=True)
class OverallHealth:
    status: Status
    timestamp: datetime
    reasons: list[str]
    components: dict[str, ComponentHealth]
    firing_alerts: int
    pending_alerts: int
    view: View
    """``fleet``: the numbers of every replica, merged through Redis; ``local``: this replica's only
    (no ``STATE_REDIS_URL``, or Redis is down)."""
    fleet: FleetStatus


@dataclass(frozen=True)
class Liveness:
    status: Literal["alive"]
    started_at: datetime
    uptime_seconds: float


@dataclass(frozen=True)
class Readiness:
    ready: bool
    reasons: list[str]
    serving_providers: list[str]


@dataclass(frozen=True)
class RateLimitHeadroom:
    limit: int
    window_seconds: float
    remaining: int | None
    """Calls still admitted now; null when the limiter's storage cannot be read."""


@dataclass(frozen=True)
class Concurrency:
    """The provider's bulkhead in this process (``P_MAX_CONCURRENCY``)."""

    limit: int
    in_flight: int
    utilisation: float
    """``in_flight / limit``; ``ProviderSaturated`` holds from the configured share (0.8)."""
    by_operation: dict[str, int]


@dataclass(frozen=True)
class EventLoopLag:
    """This process's own saturation: how late its event loop ran timers (a slow provider shows
    in its latency, a busy gateway here)."""

    instance: str
    p99_ms: float | None
    """Over the alert window; ``GatewayEventLoopLagHigh`` compares it with its threshold."""
    threshold_ms: float


@dataclass(frozen=True)
class ActiveCheck:
    status: Literal["up", "down"]
    latency_ms: float
    checked_at: datetime
    error_type: str | None


@dataclass(frozen=True)
class ProviderDetail:
    provider: str
    mode: Literal["live", "simulated"]
    status: Status
    can_serve: bool
    reasons: list[str]
    rate_limit: RateLimitHeadroom
    concurrency: Concurrency
    event_loop_lag: EventLoopLag
    last_active_check: ActiveCheck | None
    operations: dict[str, OperationHealth]


@dataclass(frozen=True)
class ServicesHealth:
    timestamp: datetime
    window: str
    """History the numbers cover (the alert window)."""
    providers: dict[str, ProviderDetail]
    view: View
    """``fleet``: the numbers of every replica, merged through Redis; ``local``: this replica's only
    (no ``STATE_REDIS_URL``, or Redis is down)."""


@dataclass(frozen=True)
class LatencyBucket:
    le: float | None
    """Upper bound in seconds; null for +Inf."""
    count: int
    """Cumulative."""


@dataclass(frozen=True)
class ServiceMetrics:
    requests: int
    successes: int
    failures: int
    success_rate: float | None
    latency_avg_ms: float | None
    latency_min_ms: float | None
    latency_max_ms: float | None
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    latency_p99_ms: float | None
    latency_histogram: list[LatencyBucket]
    errors: dict[str, int]
    rejections: dict[str, int]
    circuit_openings: int
    breaker_state: str
    last_error: ErrorRecord | None


@dataclass(frozen=True)
class MetricsReport:
    timestamp: datetime
    window: str
    services: dict[str, ServiceMetrics]
    """Per ``provider.operation``, over the window."""
    summary: dict[str, Any]
    """The seed's ``service_manager.get_metrics_summary()``."""
    view: View
    """``fleet``: the numbers of every replica, merged through Redis; ``local``: this replica's only
    (no ``STATE_REDIS_URL``, or Redis is down)."""
    fleet: FleetStatus
    """Which replicas report and when each last did, with each one's own request counts."""


@dataclass(frozen=True)
class AlertsReport:
    alerts: list[Alert]
    """Pending and firing, critical first."""
    resolved: list[Alert]
    """Recently resolved, newest first."""
    firing: int
    pending: int
    view: View
    """``fleet``: the numbers of every replica, merged through Redis; ``local``: this replica's only
    (no ``STATE_REDIS_URL``, or Redis is down)."""


@dataclass(frozen=True)
class ProviderStatus:
    status: Status
    mode: Literal["live", "simulated"]
    breakers: dict[str, str]


@dataclass(frozen=True)
class StatusOverview:
    status: Status
    timestamp: datetime
    providers: dict[str, ProviderStatus]
    firing_alerts: dict[str, int]
    """Firing alerts by severity."""
    view: View
    """``fleet``: the numbers of every replica, merged through Redis; ``local``: this replica's only
    (no ``STATE_REDIS_URL``, or Redis is down)."""


@dataclass(frozen=True)
class Configuration:
    """``Settings.public_dict()``: the configuration with every secret redacted."""

    environment: str
    enable_metrics: bool
    metrics_interval: float
    health_check_interval: float
    rate_limit_window: float
    alerts: dict[str, Any]
    alertmanager_url: str | None
    monitoring: dict[str, float]
    state: Literal["memory", "redis"]
    client_auth: bool
    admin_auth: bool
    metrics_require_auth: bool
    fallbacks_enabled: bool
    openai_model: str
    log_format: str
    services: dict[str, dict[str, Any]]
    """Per provider, with ``mode`` (live or simulated) and ``api_key`` only as ``configured``."""
    other: dict[str, Any]
    """Settings added since this schema was written."""


_CONFIGURATION_FIELDS = frozenset(f for f in Configuration.__dataclass_fields__ if f != "other")


# -- helpers -------------------------------------------------------------------------------------

def _manager(request: Request[Any, Any, Any]) -> ServiceManager:
    found: ServiceManager = request.app.state.service_manager
    return found


def _breaker(manager: ServiceManager, key: Key) -> tuple[str, bool]:
    breaker = manager.pipeline.breakers.get(f"{key[0]}.{key[1]}")
    if breaker is None:
        return "closed", False
    state = breaker.state
    return state, state == "open" and breaker.retry_after() > 0


def _active_check(manager: ServiceManager, provider: str) -> ActiveCheck | None:
    result = manager.last_health_checks.get(provider)
    if result is None:
        return None
    return ActiveCheck("up" if result.status == "up" else "down", result.latency_ms,
                       datetime.fromtimestamp(result.checked_at, UTC), result.error_type)


def _check_reasons(manager: ServiceManager) -> dict[str, list[str]]:
    reasons: dict[str, list[str]] = {}
    for provider in manager.providers:
        check = _active_check(manager, provider)
        if check is not None and check.status == "down":
            reasons[provider] = [f"last active health check failed: {check.error_type or 'unknown'}"]
    return reasons


def _health(manager: ServiceManager) -> HealthStatus:
    return manager.monitoring.health(manager.operations, lambda key: _breaker(manager, key),
                                     _check_reasons(manager))


def _state_component(manager: ServiceManager) -> ComponentHealth:
    """Where rate limits and breakers live (memory or Redis); degraded while Redis is down."""
    state = manager.state_health()
    backend: Literal["memory", "redis"] = "redis" if state["backend"] == "redis" else "memory"
    if state["status"] == "up":
        return ComponentHealth("healthy", [], backend=backend)
    return ComponentHealth("degraded", [str(state.get("detail") or f"{backend} state store is down")],
                           backend=backend)


def _mode(manager: ServiceManager, provider: str) -> Literal["live", "simulated"]:
    return manager.settings.get_service_config(provider).mode


async def provider_detail(manager: ServiceManager, health: HealthStatus, provider: str) -> ProviderDetail:
    cfg = manager.settings.get_service_config(provider)
    window = manager.settings.rate_limit_window
    try:
        remaining: int | None = await manager.pipeline.headroom(provider)
    except Exception:  # noqa: BLE001 - a shared limiter storage that is down: headroom unknown
        remaining = None
    found = health.providers[provider]
    bulkhead = manager.pipeline.bulkheads[provider]
    return ProviderDetail(
        provider=provider, mode=cfg.mode, status=found.status, can_serve=found.can_serve,
        reasons=found.reasons, rate_limit=RateLimitHeadroom(cfg.rate_limit, window, remaining),
        concurrency=Concurrency(bulkhead.limit, bulkhead.in_flight, round(bulkhead.in_flight / bulkhead.limit, 4),
                                dict(bulkhead.by_operation)),
        event_loop_lag=event_loop_lag(manager),
        last_active_check=_active_check(manager, provider), operations=found.operations,
    )


def event_loop_lag(manager: ServiceManager) -> EventLoopLag:
    monitoring, alerts = manager.monitoring, manager.settings.alerts
    p99 = monitoring.recorder.loop_lag_p99(monitoring.clock(), alerts.window)
    return EventLoopLag(monitoring.recorder.instance, to_ms(p99), alerts.event_loop_lag_warning * 1000)


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


async def aggregate_health(manager: ServiceManager) -> tuple[HealthStatus, dict[str, ComponentHealth], Status]:
    health = _health(manager)
    components = {
        name: ComponentHealth(p.status, p.reasons, can_serve=p.can_serve, mode=_mode(manager, name))
        for name, p in health.providers.items()
    }
    components["state"] = _state_component(manager)
    return health, components, overall(health.providers.values(), [components["state"].status])


# -- endpoints -----------------------------------------------------------------------------------

@get("/", summary="Overall health (healthy, degraded or unhealthy) with reasons and components")
async def overall_health(request: Request[Any, Any, Any]) -> Response[OverallHealth]:
    health, components, status = await aggregate_health(_manager(request))
    reasons = [reason if reason.startswith(f"{name}") else f"{name}: {reason}"
               for name, component in components.items() for reason in component.reasons]
    fleet = _manager(request).monitoring.fleet_status()
    body = OverallHealth(status, health.timestamp, reasons, components, health.firing_alerts, health.pending_alerts,
                         fleet.view, fleet)
    return Response(body, status_code=503 if status == "unhealthy" else 200)


@get("/live", summary="Liveness: 200 while the process runs; never depends on providers", sync_to_thread=False)
def live() -> Liveness:
    now = datetime.now(UTC)
    return Liveness("alive", _STARTED, (now - _STARTED).total_seconds())


@get("/ready", summary="Readiness: 200 once started with at least one provider able to serve, else 503",
     sync_to_thread=False)
def ready(request: Request[Any, Any, Any]) -> Response[Readiness]:
    manager = _manager(request)
    health = _health(manager)
    serving = sorted(name for name, p in health.providers.items() if p.can_serve)
    reasons = []
    if not manager.monitoring.running:
        reasons.append("the gateway has not finished starting")
    if not serving:
        reasons.append("no provider can serve: every circuit breaker is open")
    return Response(Readiness(not reasons, reasons, serving), status_code=503 if reasons else 200)


@get("/services", summary="Every provider with each operation: breaker, success rate, p95, errors, headroom")
async def services(request: Request[Any, Any, Any]) -> ServicesHealth:
    manager = _manager(request)
    health = _health(manager)
    providers = {name: await provider_detail(manager, health, name) for name in health.providers}
    return ServicesHealth(health.timestamp, format_duration(health.window), providers,
                          manager.monitoring.recorder.view)


@get("/services/{provider:str}", summary="One provider's health; 404 for an unknown provider")
async def service(request: Request[Any, Any, Any], provider: FromPath[str]) -> ProviderDetail:
    manager = _manager(request)
    health = _health(manager)
    if provider not in health.providers:
        raise NotFoundException(f"unknown provider {provider!r}; known: {', '.join(health.providers)}")
    return await provider_detail(manager, health, provider)


@get("/metrics", summary="The recorder's per-service metrics over the window, and the seed's summary",
     sync_to_thread=False)
def metrics(
    request: Request[Any, Any, Any],
    window: Annotated[str | None, QueryParameter(description="Prometheus duration; default: the alert window")] = None,
) -> MetricsReport:
    manager = _manager(request)
    monitoring = manager.monitoring
    window_s = _window(window, manager.settings.alerts.window, manager.settings.monitoring_horizon)
    now = monitoring.clock()
    recorded = set(monitoring.recorder.keys())
    services: dict[str, ServiceMetrics] = {}
    for key in sorted(set(manager.operations) | recorded):
        agg = monitoring.recorder.aggregate((key,), now - window_s, now)
        services[f"{key[0]}.{key[1]}"] = ServiceMetrics(
            requests=agg.requests, successes=agg.successes, failures=agg.requests - agg.successes,
            success_rate=agg.success_rate, latency_avg_ms=to_ms(agg.latency_avg),
            latency_min_ms=to_ms(agg.latency_min), latency_max_ms=to_ms(agg.latency_max),
            latency_p50_ms=to_ms(agg.quantile(0.5)), latency_p95_ms=to_ms(agg.quantile(0.95)),
            latency_p99_ms=to_ms(agg.quantile(0.99)),
            latency_histogram=[LatencyBucket(None if math.isinf(le) else le, int(count))
                               for le, count in agg.cumulative()],
            errors=dict(agg.errors), rejections=dict(agg.rejections), circuit_openings=agg.openings,
            breaker_state=_breaker(manager, key)[0],
            last_error=ErrorRecord.of(monitoring.recorder.last_error(key)),
        )
    fleet = monitoring.fleet_status()
    return MetricsReport(datetime.fromtimestamp(now, UTC), format_duration(window_s), services,
                         manager.get_metrics_summary(), fleet.view, fleet)


@get("/alerts", summary="Pending and firing alerts, and recently resolved ones", sync_to_thread=False)
def alerts(
    request: Request[Any, Any, Any],
    severity: Annotated[Literal["warning", "critical"] | None, QueryParameter()] = None,
    alert_type: Annotated[Literal["warning", "critical"] | None,
                          QueryParameter(description="The seed's name for severity")] = None,
) -> AlertsReport:
    monitoring = _manager(request).monitoring
    wanted = severity or alert_type
    active = monitoring.get_alerts(severity=wanted)
    return AlertsReport(active, monitoring.resolved_alerts(wanted), sum(a.state == "firing" for a in active),
                        sum(a.state == "pending" for a in active), monitoring.recorder.view)


@get("/trends/{service:str}", summary="Time series and direction of a provider (sarvam) or operation (sarvam.tts)",
     sync_to_thread=False)
def trends(
    request: Request[Any, Any, Any],
    service: FromPath[str],
    window: Annotated[str | None, QueryParameter(description="Prometheus duration; default 1h (or the horizon)")] = None,
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


@get("/status", summary="Compact overview: overall status, providers with breaker states, firing alerts")
async def status(request: Request[Any, Any, Any]) -> StatusOverview:
    manager = _manager(request)
    health, _, overall_status = await aggregate_health(manager)
    firing = [a for a in manager.monitoring.get_alerts() if a.state == "firing"]
    return StatusOverview(
        status=overall_status,
        timestamp=health.timestamp,
        providers={name: ProviderStatus(p.status, _mode(manager, name),
                                        {op: h.breaker_state for op, h in p.operations.items()})
                   for name, p in health.providers.items()},
        firing_alerts={sev: sum(a.severity == sev for a in firing) for sev in ("critical", "warning")},
        view=manager.monitoring.recorder.view,
    )


@get("/configuration", summary="Settings with secrets redacted; the admin key when one is set, off in "
     "production without one", sync_to_thread=False, guards=[require_admin])
def configuration(request: Request[Any, Any, Any]) -> Configuration:
    public = _manager(request).settings.public_dict()
    return Configuration(**{k: v for k, v in public.items() if k in _CONFIGURATION_FIELDS},
                         other={k: v for k, v in public.items() if k not in _CONFIGURATION_FIELDS})


router = Router(
    path="/health",
    route_handlers=[overall_health, live, ready, services, service, metrics, alerts, trends, status, configuration],
    tags=["health"],
)
