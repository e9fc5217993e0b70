"""The in-app usage and cost recorder: per provider operation and client, the calls that
succeeded, their billed units and their cost, in a ring of time buckets like the request
recorder's (so ``GET /health/usage?window=`` answers without the external stack), and each
provider's spend this UTC day and month (``/status``, ``provider_spend_usd`` and the monthly term of
``ProviderBudgetBurn``).

Recording touches one bucket and one running total per period (a few additions), like the request
recorder. With shared state the fleet recorder (:mod:`.fleet`) sends what changed with its flush
and reads back the fleet's (:class:`UsageSource`), so the reports are the fleet's like the others.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Literal, Protocol

from ..calls import CallEvent, CallSpec, ErrorType, ServiceKey
from ..pricing import billed_usage
from ..resilience.budgets import Periods
from .buckets import ring_size, slot_of, slots_between

UsageKey = tuple[str, str, str]
"""(provider, operation, client)."""


@dataclass
class Spend:
    """Calls that succeeded, their billed units, and the cost of those whose price is known."""

    requests: int = 0
    unpriced: int = 0
    """Calls whose price is unknown: their units are counted, their cost is not."""
    cost_usd: float = 0.0
    units: dict[str, float] = field(default_factory=dict)

    def add(self, other: Spend) -> None:
        self.requests += other.requests
        self.unpriced += other.unpriced
        self.cost_usd += other.cost_usd
        for unit, amount in other.units.items():
            self.units[unit] = self.units.get(unit, 0.0) + amount

    def copy(self) -> Spend:
        return Spend(self.requests, self.unpriced, self.cost_usd, dict(self.units))


@dataclass(frozen=True)
class UsageReport:
    """``GET /health/usage``: the window's spend in total, per ``provider.operation`` and per client."""

    window: str
    total: Spend
    services: dict[str, Spend]
    clients: dict[str, Spend]
    view: Literal["fleet", "local"]
    """The fleet's calls (merged through Redis) or this replica's, as in the other reports."""


@dataclass(frozen=True)
class SpendToday:
    """What each provider has cost this UTC day (the fleet's calls, or this replica's)."""

    day: str
    cost_usd: float
    providers: dict[str, float]
    unpriced: int


def day_period(epoch: float) -> str:
    """The running totals' name of the UTC day of ``epoch``: ``d2026-12-07``."""
    return f"d{Periods.at(epoch).day}"


def month_period(epoch: float) -> str:
    """The running totals' name of the UTC month of ``epoch``: ``m2026-12``."""
    return f"m{Periods.at(epoch).month}"


class UsageSource(Protocol):
    """Where the usage reports read: this replica's recorder, or the fleet's merge of them."""

    def window(self, now: float, window: float) -> dict[UsageKey, Spend]:
        """Spend per provider operation and client in the slots that overlap ``(now - window, now]``."""
        ...

    def spent(self, period: str) -> dict[str, Spend]:
        """Spend per provider in ``period`` (:func:`day_period`); empty for a period not held."""
        ...


class UsageRecorder:
    """A :class:`~app.calls.CallObserver` keeping spend per provider operation and client."""

    def __init__(self, bucket: float = 10.0, horizon: float = 3600.0, clock: Callable[[], float] = time.time) -> None:
        self.bucket = bucket
        self.clock = clock
        self._size = ring_size(horizon, bucket)
        self._rings: dict[UsageKey, list[tuple[int, Spend] | None]] = {}
        self.periods: dict[str, dict[str, Spend]] = {}
        """Running totals per provider of the current period and the one before (the fleet
        recorder sends what the last seconds of a period added after it ended)."""
        self._day: tuple[float, float, str, str] = (0.0, 0.0, "", "")
        """The current UTC day's start and end, and the names of its day and month (recording
        reads them, computing them once a day)."""

    def on_call(self, event: CallEvent) -> None:
        if event.health_check or event.outcome != "success":
            return
        ctx, spec = event.context, event.spec
        now = self.clock()
        units = billed_usage(ctx)
        if not self._day[0] <= now < self._day[1]:
            periods = Periods.at(now)
            self._day = (now + periods.day_left - 86400, now + periods.day_left, day_period(now), month_period(now))
        for spend in (self._bucket((spec.provider, spec.operation, ctx.client), now),
                      self._period(self._day[2]).setdefault(spec.provider, Spend()),
                      self._period(self._day[3]).setdefault(spec.provider, Spend())):
            spend.requests += 1
            if ctx.cost_usd is None:
                spend.unpriced += 1
            else:
                spend.cost_usd += ctx.cost_usd
            for unit, amount in units.items():
                spend.units[unit] = spend.units.get(unit, 0.0) + amount

    def on_rejection(self, spec: CallSpec, reason: ErrorType) -> None:
        """A refusal costs nothing."""

    def on_breaker_change(self, spec: CallSpec, old: str, new: str) -> None:
        """Nothing to keep."""

    def _bucket(self, key: UsageKey, now: float) -> Spend:
        """Slot ``s`` holds ``(s * bucket, (s + 1) * bucket]``, as the request recorder's."""
        slot = slot_of(now, self.bucket)
        ring = self._rings.get(key)
        if ring is None:
            ring = self._rings[key] = [None] * self._size
        held = ring[slot % self._size]
        if held is None or held[0] != slot:
            held = ring[slot % self._size] = (slot, Spend())
        return held[1]

    def _period(self, name: str) -> dict[str, Spend]:
        found = self.periods.get(name)
        if found is None:
            found = self.periods[name] = {}
            for old in sorted(p for p in self.periods if p[0] == name[0])[:-2]:
                del self.periods[old]
        return found

    def held(self, slots: range) -> Iterator[tuple[UsageKey, int, Spend]]:
        """The buckets of ``slots`` still in the ring: ``(key, slot, spend)``."""
        for key, ring in self._rings.items():
            for slot in slots:
                held = ring[slot % self._size]
                if held is not None and held[0] == slot:
                    yield key, slot, held[1]

    def window(self, now: float, window: float) -> dict[UsageKey, Spend]:
        totals: dict[UsageKey, Spend] = {}
        for key, _, spend in self.held(slots_between(now - window, now, self.bucket)):
            totals.setdefault(key, Spend()).add(spend)
        return totals

    def spent(self, period: str) -> dict[str, Spend]:
        return self.periods.get(period, {})


def usage_report(source: UsageSource, now: float, window: float, window_text: str,
                 view: Literal["fleet", "local"]) -> UsageReport:
    total, services, clients = Spend(), dict[str, Spend](), dict[str, Spend]()
    for (provider, operation, client), spend in sorted(source.window(now, window).items()):
        total.add(spend)
        services.setdefault(str(ServiceKey(provider, operation)), Spend()).add(spend)
        clients.setdefault(client, Spend()).add(spend)
    return UsageReport(window_text, total, services, clients, view)


def spend_to_date(source: UsageSource, now: float) -> dict[tuple[str, str], float]:
    """USD per ``(provider, "day" | "month")`` spent this UTC day and month (``provider_spend_usd``)."""
    periods = (("day", day_period(now)), ("month", month_period(now)))
    return {(provider, name): spend.cost_usd for name, period in periods
            for provider, spend in source.spent(period).items()}


def spend_today(source: UsageSource, now: float) -> SpendToday:
    providers = source.spent(day_period(now))
    return SpendToday(Periods.at(now).day, sum(s.cost_usd for s in providers.values()),
                      {name: s.cost_usd for name, s in sorted(providers.items())},
                      sum(s.unpriced for s in providers.values()))
