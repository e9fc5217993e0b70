"""The PromQL building blocks of the alert rules: the metric names they read and the recording
rules (``level:metric:operations``) their expressions use, recorded or inlined."""

from __future__ import annotations

from dataclasses import dataclass

BY = "by (provider, operation)"
ON = "on (provider, operation)"
DURATION = "provider_client_request_duration_seconds"
COST = "provider_client_cost_usd_total"
SPEND = "provider_spend_usd"
"""Gauge ``{provider, period}``: USD the fleet spent this UTC ``day`` or ``month`` (one replica's view)."""
STATE_BACKEND_UP = "gateway_state_backend_up"
"""The gauge (Prometheus name) of :mod:`app.telemetry`: 1 while the state store answers, else 0."""
ACTIVE_REQUESTS = "provider_client_active_requests"
"""Gauge ``{provider, operation}``: calls in flight now in one replica."""
CONCURRENCY_LIMIT = "provider_client_concurrency_limit"
"""Gauge ``{provider}``: ``P_MAX_CONCURRENCY`` of one replica."""
LOOP_LAG = "gateway_event_loop_lag_seconds"
"""Histogram without labels of its own: the replica's event-loop lag."""


@dataclass(frozen=True)
class RecordingRule:
    """A Prometheus recording rule named ``level:metric:operations``."""

    record: str
    expr: str


def attempted(w: str) -> RecordingRule:
    return RecordingRule(
        f"provider_operation:{DURATION}_count:increase{w}",
        f"sum {BY} (increase({DURATION}_count[{w}]))",
    )


def success_ratio(w: str, attempted_calls: str | None = None) -> RecordingRule:
    """``attempted_calls``: how to refer to the attempted calls (default: their recording rule)."""
    attempted_calls = attempted_calls or attempted(w).record
    return RecordingRule(
        f"provider_operation:provider_client_request_success:ratio{w}",
        f'(sum {BY} (increase({DURATION}_count{{outcome="success"}}[{w}])) or {attempted_calls} * 0)'
        f" / {attempted_calls}",
    )


def p95(w: str) -> RecordingRule:
    return RecordingRule(
        f"provider_operation:{DURATION}:p95_rate{w}",
        f"histogram_quantile(0.95, sum by (provider, operation, le) (rate({DURATION}_bucket[{w}])))",
    )


def opened(w: str) -> RecordingRule:
    return RecordingRule(
        f"provider_operation:provider_circuit_opened:increase{w}",
        f"sum {BY} (increase(provider_circuit_opened_total[{w}]))",
    )


def rejections(w: str) -> RecordingRule:
    return RecordingRule(
        f"provider_operation_reason:provider_client_rejections:increase{w}",
        f"sum by (provider, operation, reason) (increase(provider_client_rejections_total[{w}]))",
    )


def saturation() -> str:
    """Per provider, the highest share of the limit in flight in one replica now. ``sum without
    (operation)`` keeps each target's labels, so the division pairs a replica's in-flight calls with
    its own limit; ``max`` then drops ``job`` and ``instance``. Not recorded: it reads gauges now,
    with no window to save work on."""
    return f"max by (provider) (sum without (operation) ({ACTIVE_REQUESTS}) / {CONCURRENCY_LIMIT})"


def loop_lag_p99(w: str) -> RecordingRule:
    return RecordingRule(
        f"instance:{LOOP_LAG}:p99_rate{w}",
        f"histogram_quantile(0.99, sum by (instance, le) (rate({LOOP_LAG}_bucket[{w}])))",
    )


def rejected(reason: str, w: str, by: str, recorded: bool) -> str:
    """Calls refused for ``reason`` over ``w``, summed ``by``."""
    if recorded:
        return f'sum {by} ({rejections(w).record}{{reason="{reason}"}})'
    return f'sum {by} (increase(provider_client_rejections_total{{reason="{reason}"}}[{w}]))'


def num(value: float) -> str:
    """A threshold as PromQL and the annotations write it (``0.95``, ``5``)."""
    return f"{value:g}"
