"""What the alert conditions read: each provider operation over one window, the state backends,
each provider's spend this UTC day and month and its share of its concurrency limit in flight now,
and each replica's event-loop lag over one window."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

Key = tuple[str, str]
"""(provider, operation)."""


@dataclass(frozen=True)
class WindowStats:
    """One provider operation over one window; ``None`` where Prometheus would have no series."""

    attempted: float | None
    """Calls that reached the provider."""
    succeeded: float
    buckets: tuple[tuple[float, float], ...]
    """Cumulative latency histogram ``(upper bound in seconds, count)``, ending with ``+Inf``."""
    circuit_state: int | None
    """0 closed, 1 half-open, 2 open, now."""
    circuit_openings: float | None
    rate_limited: float | None
    """Calls rejected by the gateway's rate limit."""
    overloaded: float | None
    """Calls refused because the provider's concurrency limit (``P_MAX_CONCURRENCY``) was reached."""
    cost_usd: float | None = None
    """What the priced calls cost (``provider_client_cost_usd_total``), summed over models and clients."""


class WindowSource(Protocol):
    """Where the evaluator reads its numbers: the in-app recorder, or recorded samples."""

    def window_stats(self, now: float, window: float) -> Mapping[Key, WindowStats]: ...

    def state_backends(self, now: float) -> Mapping[str, float]:
        """Per state backend (``redis``, ``memory``), ``gateway_state_backend_up`` now (1 answers,
        0 down; the lowest over replicas, as ``min by (backend)``); absent without a sample."""
        ...

    def saturation(self, now: float) -> Mapping[str, float]:
        """Per provider, the highest share of its concurrency limit in flight in one replica now
        (calls in flight over all operations / limit); absent without a sample."""
        ...

    def spend_to_date(self, now: float) -> Mapping[tuple[str, str], float]:
        """Per ``(provider, period)`` (``day``, ``month``), ``provider_spend_usd`` now: USD spent this
        UTC day or month (the highest over replicas, as ``max by (provider)``); absent without a sample."""
        ...

    def loop_lag(self, now: float, window: float) -> Mapping[str, tuple[tuple[float, float], ...]]:
        """Per replica (``instance``), the event-loop lag histogram over the window: cumulative
        ``(upper bound in seconds, count or rate)`` ending with ``+Inf``; absent without data."""
        ...


def to_ms(seconds: float | None) -> float | None:
    """Seconds as milliseconds, keeping "no value" (``None``)."""
    return seconds * 1000 if seconds is not None else None
