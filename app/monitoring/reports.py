"""The health reports every ``/health`` endpoint answers and the status page shows, built here.

``/health/`` aggregates like Spring Boot Actuator (see :mod:`app.monitoring.status`): each
provider is a component (an open breaker, a firing alert or a failed active health check makes it
degraded; it is unhealthy when no operation can serve), and so is the shared ``state`` (memory or
Redis; degraded when Redis is down).

The reports read the running gateway through :class:`Gateway`, which the service manager
provides: monitoring never imports the providers. Their types are in :mod:`app.monitoring.schemas`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal, Protocol

from ..calls import ServiceKey
from ..config import Settings, format_duration
from .schemas import (
    ActiveCheck,
    AlertsReport,
    ComponentHealth,
    Concurrency,
    Configuration,
    EventLoopLag,
    LatencyBucket,
    MetricsReport,
    OverallHealth,
    ProviderDetail,
    ProviderStatus,
    RateLimitHeadroom,
    Readiness,
    ServiceMetrics,
    ServicesHealth,
    StatusOverview,
)
from .stats import Key, to_ms
from .status import ErrorRecord, HealthStatus, Status, overall

if TYPE_CHECKING:
    from . import Monitoring


class ActiveCheckResult(Protocol):
    """The last active health check of a provider."""

    @property
    def status(self) -> str: ...
    @property
    def latency_ms(self) -> float: ...
    @property
    def checked_at(self) -> float: ...
    @property
    def error_type(self) -> str | None: ...


class StateReading(Protocol):
    """Where rate limits and breakers live and whether that store answers."""

    @property
    def backend(self) -> Literal["memory", "redis"]: ...
    @property
    def status(self) -> Literal["up", "down"]: ...
    @property
    def detail(self) -> str | None: ...


class Gateway(Protocol):
    """What the reports read of the running gateway."""

    @property
    def settings(self) -> Settings: ...
    @property
    def monitoring(self) -> Monitoring: ...
    @property
    def operations(self) -> list[Key]: ...
    @property
    def last_health_checks(self) -> Mapping[str, ActiveCheckResult]: ...

    def breaker_view(self, key: Key) -> tuple[str, bool]:
        """``(state, rejecting)`` of an operation's breaker."""
        ...

    async def headroom(self, provider: str) -> int | None:
        """Calls the rate limit still admits now; ``None`` when its storage cannot be read."""
        ...

    def concurrency(self, provider: str) -> tuple[int, int, dict[str, int]]:
        """The provider's bulkhead: limit, calls in flight, in flight by operation."""
        ...

    def state_backend(self) -> StateReading: ...

    def get_metrics_summary(self) -> Mapping[str, object]: ...


CONFIGURATION_FIELDS = frozenset(f for f in Configuration.__dataclass_fields__ if f != "other")


def configuration(settings: Settings) -> Configuration:
    public = settings.public_dict()
    return Configuration(**{k: v for k, v in public.items() if k in CONFIGURATION_FIELDS},
                         other={k: v for k, v in public.items() if k not in CONFIGURATION_FIELDS})


def active_check(gateway: Gateway, provider: str) -> ActiveCheck | None:
    result = gateway.last_health_checks.get(provider)
    if result is None:
        return None
    return ActiveCheck("up" if result.status == "up" else "down", result.latency_ms,
                       datetime.fromtimestamp(result.checked_at, UTC), result.error_type)


def health(gateway: Gateway) -> HealthStatus:
    """Every served operation; a provider whose last active check failed is degraded."""
    reasons: dict[str, list[str]] = {}
    for provider in dict.fromkeys(p for p, _ in gateway.operations):
        check = active_check(gateway, provider)
        if check is not None and check.status == "down":
            reasons[provider] = [f"last active health check failed: {check.error_type or 'unknown'}"]
    return gateway.monitoring.health(gateway.operations, gateway.breaker_view, reasons)


def _state_component(gateway: Gateway) -> ComponentHealth:
    """Where rate limits and breakers live (memory or Redis); degraded while Redis is down."""
    state = gateway.state_backend()
    if state.status == "up":
        return ComponentHealth("healthy", [], backend=state.backend)
    return ComponentHealth("degraded", [state.detail or f"{state.backend} state store is down"],
                           backend=state.backend)


def _mode(gateway: Gateway, provider: str) -> Literal["live", "simulated"]:
    return gateway.settings.get_service_config(provider).mode


@dataclass(frozen=True)
class Aggregate:
    """The overall health: per operation and provider, the components, and the overall status."""

    health: HealthStatus
    components: dict[str, ComponentHealth]
    status: Status

    @property
    def reasons(self) -> list[str]:
        return [reason if reason.startswith(f"{name}") else f"{name}: {reason}"
                for name, component in self.components.items() for reason in component.reasons]


def aggregate(gateway: Gateway) -> Aggregate:
    found = health(gateway)
    components = {
        name: ComponentHealth(p.status, p.reasons, can_serve=p.can_serve, mode=_mode(gateway, name))
        for name, p in found.providers.items()
    }
    components["state"] = _state_component(gateway)
    return Aggregate(found, components, overall(found.providers.values(), [components["state"].status]))


def overall_health(gateway: Gateway) -> OverallHealth:
    agg = aggregate(gateway)
    fleet = gateway.monitoring.fleet_status()
    return OverallHealth(agg.status, agg.health.timestamp, agg.reasons, agg.components,
                         agg.health.firing_alerts, agg.health.pending_alerts, fleet.view, fleet)


def readiness(gateway: Gateway) -> Readiness:
    serving = sorted(name for name, p in health(gateway).providers.items() if p.can_serve)
    reasons = []
    if not gateway.monitoring.running:
        reasons.append("the gateway has not finished starting")
    if not serving:
        reasons.append("no provider can serve: every circuit breaker is open")
    return Readiness(not reasons, reasons, serving)


def event_loop_lag(gateway: Gateway) -> EventLoopLag:
    monitoring, alerts = gateway.monitoring, gateway.settings.alerts
    p99 = monitoring.recorder.loop_lag_p99(monitoring.clock(), alerts.window)
    return EventLoopLag(monitoring.recorder.instance, to_ms(p99), alerts.event_loop_lag_warning * 1000)


async def provider_detail(gateway: Gateway, found: HealthStatus, provider: str) -> ProviderDetail:
    cfg = gateway.settings.get_service_config(provider)
    window = gateway.settings.rate_limit_window
    remaining = await gateway.headroom(provider)
    component = found.providers[provider]
    limit, in_flight, by_operation = gateway.concurrency(provider)
    return ProviderDetail(
        provider=provider, mode=cfg.mode, status=component.status, can_serve=component.can_serve,
        reasons=component.reasons, rate_limit=RateLimitHeadroom(cfg.rate_limit, window, remaining),
        concurrency=Concurrency(limit, in_flight, round(in_flight / limit, 4), by_operation),
        event_loop_lag=event_loop_lag(gateway),
        last_active_check=active_check(gateway, provider), operations=component.operations,
    )


async def services(gateway: Gateway) -> ServicesHealth:
    found = health(gateway)
    providers = {name: await provider_detail(gateway, found, name) for name in found.providers}
    return ServicesHealth(found.timestamp, format_duration(found.window), providers,
                          gateway.monitoring.recorder.view)


def metrics(gateway: Gateway, window: float) -> MetricsReport:
    """The recorder's numbers per served or recorded operation over ``window`` seconds."""
    monitoring = gateway.monitoring
    now = monitoring.clock()
    reports: dict[str, ServiceMetrics] = {}
    for key in sorted(set(gateway.operations) | set(monitoring.recorder.keys())):
        agg = monitoring.recorder.aggregate((key,), now - window, now)
        reports[str(ServiceKey(*key))] = ServiceMetrics(
            requests=agg.requests, successes=agg.successes, failures=agg.requests - agg.successes,
            success_rate=agg.success_rate, latency_avg_ms=to_ms(agg.latency_avg),
            latency_min_ms=to_ms(agg.latency_min), latency_max_ms=to_ms(agg.latency_max),
            latency_p50_ms=to_ms(agg.quantile(0.5)), latency_p95_ms=to_ms(agg.quantile(0.95)),
            latency_p99_ms=to_ms(agg.quantile(0.99)),
            latency_histogram=[LatencyBucket(None if math.isinf(le) else le, int(count))
                               for le, count in agg.cumulative()],
            errors=dict(agg.errors), rejections=dict(agg.rejections), circuit_openings=agg.openings,
            breaker_state=gateway.breaker_view(key)[0],
            last_error=ErrorRecord.of(monitoring.recorder.last_error(key)),
        )
    fleet = monitoring.fleet_status()
    return MetricsReport(datetime.fromtimestamp(now, UTC), format_duration(window), reports,
                         dict(gateway.get_metrics_summary()), fleet.view, fleet)


def alerts(monitoring: Monitoring, severity: str | None) -> AlertsReport:
    active = monitoring.get_alerts(severity=severity)
    firing, pending = sum(a.state == "firing" for a in active), sum(a.state == "pending" for a in active)
    resolved = monitoring.resolved_alerts(severity)
    return AlertsReport(active, resolved, firing, pending, monitoring.recorder.view)


def status_overview(gateway: Gateway) -> StatusOverview:
    agg = aggregate(gateway)
    firing = [a for a in gateway.monitoring.get_alerts() if a.state == "firing"]
    return StatusOverview(
        status=agg.status,
        timestamp=agg.health.timestamp,
        providers={name: ProviderStatus(p.status, _mode(gateway, name),
                                        {op: h.breaker_state for op, h in p.operations.items()})
                   for name, p in agg.health.providers.items()},
        firing_alerts={sev: sum(a.severity == sev for a in firing) for sev in ("critical", "warning")},
        view=gateway.monitoring.recorder.view,
    )
