"""The health reports' types: what each ``/health`` endpoint answers (Litestar generates the
OpenAPI document's schemas from these dataclasses) and the status page shows.

Built by :mod:`app.monitoring.reports`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from .evaluator import Alert
from .fleet import FleetStatus, View
from .status import ErrorRecord, OperationHealth, Status


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
    """``fleet``: every replica's numbers, merged through Redis; ``local``: this replica's only."""
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
    """``fleet``: every replica's numbers, merged through Redis; ``local``: this replica's only."""


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
    """``fleet``: every replica's numbers, merged through Redis; ``local``: this replica's only."""
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
    """``fleet``: every replica's numbers, merged through Redis; ``local``: this replica's only."""


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
    """``fleet``: every replica's numbers, merged through Redis; ``local``: this replica's only."""


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
