"""The in-app usage and cost recorder: per provider operation and client, the calls that
succeeded, their billed units and their cost, in a ring of time buckets like the request
recorder's (so ``GET /health/usage?window=`` answers without the external stack), and each
provider's spend this UTC day (for ``/status``).

Recording touches one bucket (a few additions), like the request recorder. The numbers are this
replica's: the fleet merge of :mod:`.fleet` does not carry them yet, so its reports say
``"view": "local"``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from ..calls import CallEvent, CallSpec, ErrorType, ServiceKey
from ..pricing import billed_usage

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


@dataclass(frozen=True)
class UsageReport:
    """``GET /health/usage``: the window's spend in total, per ``provider.operation`` and per client."""

    window: str
    total: Spend
    services: dict[str, Spend]
    clients: dict[str, Spend]
    view: Literal["local"] = "local"
    """This replica's calls only (the fleet merge does not carry usage yet)."""


@dataclass(frozen=True)
class SpendToday:
    """What each provider has cost this UTC day (this replica's calls)."""

    day: str
    cost_usd: float
    providers: dict[str, float]
    unpriced: int


def _day(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d")


class UsageRecorder:
    """A :class:`~app.calls.CallObserver` keeping spend per provider operation and client."""

    def __init__(self, bucket: float = 10.0, horizon: float = 3600.0, clock: Callable[[], float] = time.time) -> None:
        self.bucket = bucket
        self.clock = clock
        self._size = math.ceil(horizon / bucket) + 1
        self._rings: dict[UsageKey, list[tuple[int, Spend] | None]] = {}
        self._today: tuple[str, dict[str, Spend]] = ("", {})

    def on_call(self, event: CallEvent) -> None:
        if event.health_check or event.outcome != "success":
            return
        ctx, spec = event.context, event.spec
        now = self.clock()
        units = billed_usage(ctx)
        day = _day(now)
        if self._today[0] != day:
            self._today = (day, {})
        for spend in (self._bucket((spec.provider, spec.operation, ctx.client), now),
                      self._today[1].setdefault(spec.provider, Spend())):
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
        slot = math.ceil(now / self.bucket) - 1
        ring = self._rings.get(key)
        if ring is None:
            ring = self._rings[key] = [None] * self._size
        held = ring[slot % self._size]
        if held is None or held[0] != slot:
            held = ring[slot % self._size] = (slot, Spend())
        return held[1]

    def window(self, now: float, window: float) -> dict[UsageKey, Spend]:
        """Spend per provider operation and client in the slots that overlap ``(now - window, now]``."""
        first, last = math.floor((now - window) / self.bucket), math.ceil(now / self.bucket) - 1
        totals: dict[UsageKey, Spend] = {}
        for key, ring in self._rings.items():
            for held in ring:
                if held is not None and first <= held[0] <= last:
                    totals.setdefault(key, Spend()).add(held[1])
        return totals

    def spend_today(self) -> SpendToday:
        day, providers = self._today
        if day != _day(self.clock()):
            return SpendToday(_day(self.clock()), 0.0, {}, 0)
        return SpendToday(day, sum(s.cost_usd for s in providers.values()),
                          {name: s.cost_usd for name, s in sorted(providers.items())},
                          sum(s.unpriced for s in providers.values()))


def usage_report(recorder: UsageRecorder, window: float, window_text: str) -> UsageReport:
    total, services, clients = Spend(), dict[str, Spend](), dict[str, Spend]()
    for (provider, operation, client), spend in sorted(recorder.window(recorder.clock(), window).items()):
        total.add(spend)
        services.setdefault(str(ServiceKey(provider, operation)), Spend()).add(spend)
        clients.setdefault(client, Spend()).add(spend)
    return UsageReport(window_text, total, services, clients)
