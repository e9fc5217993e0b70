"""Health of provider operations and providers, aggregated the way Spring Boot Actuator does.

An operation is ``unhealthy`` while its breaker rejects calls (open, inside its reset timeout),
``degraded`` while the breaker is half-open or open but ready for a trial call, or while one of
its alerts fires, ``healthy`` otherwise. A provider can serve while at least one of its operations
is not rejecting; it is ``unhealthy`` when none can, ``degraded`` when any operation is not
healthy (or a caller-supplied reason says so, e.g. a failed active health check). The overall
status is the worst of the components, except that it is ``unhealthy`` only when no provider can
serve (one provider down leaves the gateway ``degraded``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from ..calls import ServiceKey
from .evaluator import Alert
from .recorder import LastError, Recorder
from .stats import Key, to_ms

Status = Literal["healthy", "degraded", "unhealthy"]
BreakerView = Callable[[Key], tuple[str, bool]]
"""``(state, rejecting)`` of the breaker of a provider operation."""
_RANK: dict[Status, int] = {"healthy": 0, "degraded": 1, "unhealthy": 2}


def worst(statuses: Iterable[Status]) -> Status:
    return max(statuses, key=_RANK.__getitem__, default="healthy")


@dataclass(frozen=True)
class ErrorRecord:
    timestamp: datetime
    error_type: str

    @classmethod
    def of(cls, last: LastError | None) -> ErrorRecord | None:
        """The recorder's last error of an operation, with its time as a UTC datetime."""
        return cls(datetime.fromtimestamp(last.timestamp, UTC), last.error_type) if last else None


@dataclass(frozen=True)
class OperationHealth:
    """One provider operation over the alert window."""

    service: str
    """``provider.operation``."""
    status: Status
    reasons: list[str]
    breaker_state: str
    can_serve: bool
    requests: int
    success_rate: float | None
    latency_avg_ms: float | None
    latency_min_ms: float | None
    latency_max_ms: float | None
    latency_p95_ms: float | None
    errors: dict[str, int]
    """Failed attempts by error type."""
    rejections: dict[str, int]
    """Calls refused before reaching the provider, by reason."""
    last_error: ErrorRecord | None
    firing_alerts: list[str]


@dataclass(frozen=True)
class ProviderHealth:
    provider: str
    status: Status
    can_serve: bool
    reasons: list[str]
    operations: dict[str, OperationHealth] = field(default_factory=dict)


@dataclass(frozen=True)
class HealthStatus:
    """The seed's ``monitoring.get_health_status()``."""

    status: Status
    timestamp: datetime
    window: float
    """Seconds of history the numbers cover."""
    providers: dict[str, ProviderHealth]
    firing_alerts: int
    pending_alerts: int


def operation_health(
    recorder: Recorder, key: Key, breaker: BreakerView, alerts: Sequence[Alert], window: float, now: float,
) -> OperationHealth:
    agg = recorder.aggregate((key,), now - window, now)
    state, rejecting = breaker(key)
    firing = sorted({f"{a.name}/{a.severity}" for a in alerts
                     if a.state == "firing" and (a.provider, a.operation) == key})
    reasons: list[str] = []
    if rejecting:
        reasons.append("circuit breaker open: calls are rejected")
    elif state != "closed":
        reasons.append(f"circuit breaker {state}")
    reasons.extend(f"alert firing: {name}" for name in firing)
    status: Status = "unhealthy" if rejecting else ("degraded" if reasons else "healthy")
    return OperationHealth(
        service=str(ServiceKey(*key)), status=status, reasons=reasons, breaker_state=state,
        can_serve=not rejecting, requests=agg.requests, success_rate=agg.success_rate,
        latency_avg_ms=to_ms(agg.latency_avg), latency_min_ms=to_ms(agg.latency_min),
        latency_max_ms=to_ms(agg.latency_max), latency_p95_ms=to_ms(agg.quantile(0.95)),
        errors=dict(agg.errors), rejections=dict(agg.rejections),
        last_error=ErrorRecord.of(recorder.last_error(key)),
        firing_alerts=firing,
    )


def provider_health(
    provider: str, operations: Sequence[OperationHealth], extra_reasons: Sequence[str] = (),
) -> ProviderHealth:
    """A provider from its operations; ``extra_reasons`` (if any) make it at least degraded."""
    can_serve = any(op.can_serve for op in operations) or not operations
    reasons = [f"{op.service}: {reason}" for op in operations for reason in op.reasons]
    reasons.extend(extra_reasons)
    status: Status = "unhealthy" if not can_serve else ("degraded" if reasons else "healthy")
    return ProviderHealth(provider, status, can_serve, reasons,
                          {ServiceKey.parse(op.service).operation: op for op in operations})


def overall(providers: Iterable[ProviderHealth], others: Iterable[Status] = ()) -> Status:
    """Unhealthy only when no provider can serve; otherwise the worst component, capped at degraded."""
    found = list(providers)
    if found and not any(p.can_serve for p in found):
        return "unhealthy"
    status = worst([p.status for p in found] + list(others))
    return "degraded" if status == "unhealthy" else status
