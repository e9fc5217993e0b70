"""``GET /health/slo``: per provider operation, the objectives, the SLI and the error budget left,
and the burn rate in each window, as the budget-burn alerts compute them in-app.

The budget is spent over the period (``SLO_PERIOD``), but the recorder holds at most its coarse
ring (3 days): the report says over which it computed the budget (``budget_over``, ``budget_window``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from ..config import format_duration
from .fleet import View
from .history import Tiered
from .slo import SIGNALS, Signal, Slo
from .stats import Key


@dataclass(frozen=True)
class SignalSlo:
    objective: float
    """Share of attempted calls that must be good."""
    sli: float | None
    """Share of attempted calls that were good over the budget window; null without calls."""
    budget_remaining: float | None
    """Share of the error budget left over the budget window (negative once overspent)."""
    burn_rates: dict[str, float | None]
    """By window (``5m`` ... ``3d``): the bad ratio over the error budget; 1 spends it in the period."""
    latency_threshold: float | None = None
    """Seconds (latency only): calls slower than this spend the budget."""


@dataclass(frozen=True)
class OperationSlo:
    provider: str
    operation: str
    availability: SignalSlo
    latency: SignalSlo


@dataclass(frozen=True)
class SloReport:
    period: str
    """``SLO_PERIOD`` (divided by ``SLO_TIME_SCALE``)."""
    budget_over: Literal["period", "history"]
    """``period``: the budget is computed over the whole period; ``history``: over the history held,
    which is shorter than the period."""
    budget_window: str
    time_scale: int
    windows: list[str]
    operations: list[OperationSlo]
    view: View
    """``fleet``: every replica's calls, merged through Redis (both rings); ``local``: this
    replica's only (either ring local)."""


def slo_report(slo: Slo, source: Tiered, keys: Sequence[Key], now: float) -> SloReport:
    held = source.held(slo.period)
    budget_stats = source.window_stats(now, slo.period)
    by_window = {format_duration(w): source.window_stats(now, w) for w in slo.windows}

    def signal(name: Signal, key: Key) -> SignalSlo:
        stats = budget_stats.get(key)
        ratio = slo.ratio(name, key[0], stats)
        threshold = slo.settings.objectives(key[0]).latency_threshold if name == "latency" else None
        return SignalSlo(
            objective=slo.objective(name, key[0]),
            sli=None if ratio is None else 1 - ratio,
            budget_remaining=slo.budget_remaining(name, key[0], stats),
            burn_rates={w: slo.burn_rate(name, key[0], found.get(key)) for w, found in by_window.items()},
            latency_threshold=threshold,
        )

    operations = [OperationSlo(key[0], key[1], *(signal(name, key) for name in SIGNALS)) for key in keys]
    return SloReport(
        period=format_duration(slo.period), budget_over="period" if held >= slo.period else "history",
        budget_window=format_duration(held), time_scale=slo.settings.time_scale,
        windows=list(by_window), operations=operations,
        view="fleet" if source.fine.view == source.coarse.view == "fleet" else "local",
    )
