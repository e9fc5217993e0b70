"""What the status page shows, gathered from the service manager and its monitoring.

Everything comes from the same objects the ``/health`` endpoints read: the recorder's numbers
over the alert window ("now"), the evaluator's alerts, the trends over the chart window, the
pipeline's breakers and rate limiter, and the last active health checks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal

from ...calls import ServiceKey
from ...config import format_duration, parse_duration
from ...monitoring import Alert, reports
from ...monitoring.fleet import FleetStatus
from ...monitoring.rules import AlertRule
from ...monitoring.schemas import ActiveCheck, Concurrency, EventLoopLag
from ...monitoring.status import OperationHealth, Status
from ...monitoring.trends import Trends, parse_window_step
from ...monitoring.usage import SpendToday
from .charts import Chart, Threshold, line_chart

if TYPE_CHECKING:
    from ...providers.service_manager import ServiceManager

CHART_POINTS = 60
"""Intervals per chart; the step is the chart window over this, at least one recorder bucket."""
LATENCY_FLOOR_S = 12.0
"""The latency charts' vertical axis reaches at least this far, so that both lines show."""

Rules = dict[tuple[str, str], AlertRule]
"""Alert rules by name and severity."""
STATUS_WORDS: dict[Status, str] = {"healthy": "Healthy", "degraded": "Degraded", "unhealthy": "Unhealthy"}


@dataclass(frozen=True)
class OperationView:
    provider: str
    operation: str
    status: Status
    breaker_state: str
    calls_per_minute: float
    """Calls that reached the provider, per minute over the alert window."""
    success_rate: float | None
    latency_p95_ms: float | None
    rejections: dict[str, int]
    """Calls refused before reaching the provider over the alert window, by reason."""
    success_chart: Chart | None
    """None when the chart window holds no calls."""
    latency_chart: Chart | None
    availability_budget: float | None = None
    """Share of the availability error budget left (``/health/slo``); None without calls."""
    latency_budget: float | None = None

    @property
    def service(self) -> str:
        return str(ServiceKey(self.provider, self.operation))


@dataclass(frozen=True)
class ProviderView:
    name: str
    mode: Literal["live", "simulated"]
    status: Status
    reasons: list[str]
    rate_limit: int
    rate_limit_window: float
    headroom: int | None
    """Calls the rate limit still admits in its current window; None when its storage is down."""
    concurrency: Concurrency
    last_check: ActiveCheck | None
    operations: list[OperationView]


@dataclass(frozen=True)
class AlertView:
    name: str
    severity: str
    state: str
    service: str
    since: datetime
    value_text: str
    threshold_text: str
    summary: str
    description: str
    runbook_url: str
    fired_at: datetime | None
    resolved_at: datetime | None


@dataclass(frozen=True)
class StatusPage:
    generated_at: datetime
    status: Status
    reasons: list[str]
    providers: list[ProviderView]
    alerts: list[AlertView]
    """Firing and pending, critical first."""
    resolved: list[AlertView]
    """Recently resolved, newest first."""
    refresh_seconds: float
    alert_window: str
    chart_window: str
    chart_step: str
    environment: str
    event_loop_lag: EventLoopLag
    window_choices: list[str]
    """Chart windows the recorder's horizon allows, for links."""
    fleet: FleetStatus
    """Whose numbers: the fleet's (merged through Redis) or this process's, and who reports."""
    spend_today: SpendToday
    """What each provider has cost this UTC day (the fleet's calls while :attr:`fleet` is)."""
    budget_window: str
    """The history the error budgets left are computed over (``/health/slo``'s ``budget_window``)."""

    @property
    def status_word(self) -> str:
        return STATUS_WORDS[self.status]

    @property
    def firing(self) -> int:
        return sum(a.state == "firing" for a in self.alerts)

    @property
    def pending(self) -> int:
        return sum(a.state == "pending" for a in self.alerts)


def chart_step(window: float, bucket: float) -> float:
    """About :data:`CHART_POINTS` intervals over ``window``, each a whole number of buckets."""
    return max(1, math.ceil(window / CHART_POINTS / bucket)) * bucket


async def build(manager: ServiceManager, chart_window: str | float = "1h") -> StatusPage:
    """The page's data now; ``chart_window`` is a duration (raises ``TrendError`` when unusable).

    The overall status, its reasons and each provider's details are computed by the same
    functions as ``/health/`` and ``/health/services``."""
    settings, monitoring = manager.settings, manager.monitoring
    window_s, step_s = parse_window_step(chart_window, chart_step(_seconds(chart_window), settings.monitoring_bucket),
                                         settings.monitoring_bucket, settings.monitoring_horizon)
    agg = reports.aggregate(manager)
    health = agg.health
    rules: Rules = {(r.name, r.severity): r for r in monitoring.rules}
    slo = monitoring.slo_report(sorted(set(manager.operations) | set(monitoring.recorder.keys())))
    budgets = {(o.provider, o.operation): (o.availability.budget_remaining, o.latency.budget_remaining)
               for o in slo.operations}
    providers = []
    for name in health.providers:
        detail = await reports.provider_detail(manager, health, name)
        operations = [
            _operation(op, monitoring.trends(op.service, window_s, step_s, operations=manager.operations),
                       settings.alerts.window, rules, budgets)
            for op in detail.operations.values()
        ]
        providers.append(ProviderView(
            name=name, mode=detail.mode, status=detail.status, reasons=detail.reasons,
            rate_limit=detail.rate_limit.limit, rate_limit_window=detail.rate_limit.window_seconds,
            headroom=detail.rate_limit.remaining, concurrency=detail.concurrency,
            last_check=detail.last_active_check, operations=operations,
        ))
    return StatusPage(
        generated_at=health.timestamp, status=agg.status, reasons=agg.reasons, providers=providers,
        alerts=[_alert(a, rules) for a in monitoring.get_alerts()],
        resolved=[_alert(a, rules) for a in monitoring.resolved_alerts()],
        refresh_seconds=settings.alerts.eval_interval, alert_window=format_duration(settings.alerts.window),
        chart_window=format_duration(window_s), chart_step=format_duration(step_s),
        environment=settings.environment, event_loop_lag=reports.event_loop_lag(manager),
        window_choices=[w for w in ("15m", "1h") if parse_duration(w) <= settings.monitoring_horizon],
        fleet=monitoring.fleet_status(),
        budget_window=slo.budget_window,
        spend_today=monitoring.spend_today(),
    )


def _seconds(window: str | float) -> float:
    """``window`` in seconds for choosing the step; a bad value is left for the trends check."""
    try:
        return parse_duration(window) if isinstance(window, str) else float(window)
    except ValueError:
        return 3600.0


def _operation(op: OperationHealth, trends: Trends, window: float, rules: Rules,
               budgets: dict[tuple[str, str], tuple[float | None, float | None]]) -> OperationView:
    key = ServiceKey.parse(op.service)
    availability, latency = budgets.get((key.provider, key.operation), (None, None))
    charts = _charts(op.service, trends, rules) if any(p.requests for p in trends.points) else (None, None)
    return OperationView(
        provider=key.provider, operation=key.operation, status=op.status,
        breaker_state=op.breaker_state, calls_per_minute=op.requests * 60 / window,
        success_rate=op.success_rate, latency_p95_ms=op.latency_p95_ms, rejections=op.rejections,
        success_chart=charts[0], latency_chart=charts[1], availability_budget=availability, latency_budget=latency,
    )


def _charts(service: str, trends: Trends, rules: Rules) -> tuple[Chart, Chart]:
    points = trends.points
    step = _step_seconds(trends)
    start, end = points[0].timestamp - timedelta(seconds=step), points[-1].timestamp
    success = [(p.timestamp, p.success_rate) for p in points]
    latency = [(p.timestamp, p.latency_p95_ms / 1000 if p.latency_p95_ms is not None else None) for p in points]
    warn_rate, crit_rate = rules[("ProviderSuccessRateLow", "warning")], rules[("ProviderSuccessRateLow", "critical")]
    warn_p95, crit_p95 = rules[("ProviderLatencyHigh", "warning")], rules[("ProviderLatencyHigh", "critical")]
    slowest = max((v for _, v in latency if v is not None), default=0.0)
    y_max = max(LATENCY_FLOOR_S, crit_p95.threshold * 1.2, math.ceil(slowest * 1.1))
    slug = service.replace(".", "-")
    return (
        line_chart(
            chart_id=f"chart-{slug}-success", title=f"{service} success rate, last {trends.window}",
            points=success, start=start, end=end, y_max=1.0, y_ticks=((0.0, "0%"), (0.5, "50%"), (1.0, "100%")),
            thresholds=(Threshold(warn_rate.threshold, "warning", True, percent(warn_rate.threshold, 0)),
                        Threshold(crit_rate.threshold, "critical", True, percent(crit_rate.threshold, 0))),
            fmt=percent, step_text=trends.step,
        ),
        line_chart(
            chart_id=f"chart-{slug}-latency", title=f"{service} p95 latency, last {trends.window}",
            points=latency, start=start, end=end, y_max=y_max, y_ticks=((0.0, "0 s"), (y_max, seconds(y_max))),
            thresholds=(Threshold(warn_p95.threshold, "warning", False, seconds(warn_p95.threshold)),
                        Threshold(crit_p95.threshold, "critical", False, seconds(crit_p95.threshold))),
            fmt=seconds, step_text=trends.step,
        ),
    )


def _step_seconds(trends: Trends) -> float:
    if len(trends.points) > 1:
        return (trends.points[1].timestamp - trends.points[0].timestamp).total_seconds()
    return parse_duration(trends.step)


def _alert(alert: Alert, rules: Rules) -> AlertView:
    rule = rules.get((alert.name, alert.severity))
    value, threshold = describe_value(rule, alert.value, alert.threshold)
    return AlertView(
        name=alert.name, severity=alert.severity, state=alert.state,
        service=alert.subject, since=alert.since, value_text=value,
        threshold_text=threshold, summary=alert.annotations.get("summary", ""),
        description=alert.annotations.get("description", ""), runbook_url=alert.annotations.get("runbook_url", ""),
        fired_at=alert.fired_at, resolved_at=alert.resolved_at,
    )


def describe_value(rule: AlertRule | None, value: float, threshold: float) -> tuple[str, str]:
    """An alert's value and threshold for people, by the kind of rule."""
    kind = rule.kind if rule else None
    if kind == "success_rate":
        return f"{percent(value)} succeeded", f"below {percent(threshold, 0)}"
    if kind == "latency_p95":
        return f"p95 {seconds(value)}", f"above {seconds(threshold)}"
    if kind == "circuit_open":
        if value == 2.0:
            return "breaker open now", "open now or opened in the window"
        return f"opened {value:g} {'time' if value == 1 else 'times'}", "open now or opened in the window"
    if kind == "rate_limited":
        return f"{value:g} {'call' if value == 1 else 'calls'} rejected", "any rejection"
    if kind == "state_backend_down":
        return "not answering", "store answers"
    if kind == "saturated":  # the refusals when there were any, else the in-flight share (PromQL's `or`)
        return f"value {value:.4g}", f"any overloaded refusal, or {percent(threshold, 0)} of the limit in flight"
    if kind == "event_loop_lag":
        return f"p99 loop lag {seconds(value)}", f"above {seconds(threshold)}"
    if kind in ("error_budget_burn", "latency_budget_burn") and rule is not None and rule.slo is not None:
        factors = " or ".join(f"{p.factor:g}x" for p in rule.slo.pairs(rule.page))
        return f"budget burning {value:.1f}x", f"{factors} in both windows of a pair"
    return f"{value:g}", f"{threshold:g}"


def percent(value: float, digits: int = 1) -> str:
    return f"{value * 100:.{digits}f}%"


def seconds(value: float) -> str:
    """Seconds for people: ``850 ms``, ``1.25 s``, ``5 s``."""
    if value < 1:
        return f"{value * 1000:.0f} ms"
    return f"{value:.3g} s"


def ago(then: datetime, now: datetime) -> str:
    """``3m 20s`` since ``then``."""
    total = max(0, int((now - then).total_seconds()))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


def utc(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%H:%M:%S UTC")
