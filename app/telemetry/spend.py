"""The cost and usage counters' running totals, kept in plain dicts and read by observable
counters when metrics are collected: adding to an SDK counter costs about 10 µs per call (its
attributes are hashed into a frozen set each time), a dict entry well under one, and a chat call
adds four series (bench/README.md, "Pricing")."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping

from opentelemetry.metrics import CallbackOptions, Observation

Labels = tuple[tuple[str, str], ...]


class SpendTotals:
    """Cumulative USD and billed units per label set, since the process started."""

    def __init__(self) -> None:
        self._cost: dict[Labels, float] = {}
        self._usage: dict[Labels, float] = {}
        self._lock = threading.Lock()
        """Collection runs in the exporter's thread; recording in the event loop's."""

    def add(self, labels: Labels, cost: float | None, usage: Mapping[Labels, float]) -> None:
        with self._lock:
            if cost is not None:
                self._cost[labels] = self._cost.get(labels, 0.0) + cost
            for key, amount in usage.items():
                self._usage[key] = self._usage.get(key, 0.0) + amount

    def observe_cost(self, _: CallbackOptions) -> Iterable[Observation]:
        with self._lock:
            totals = list(self._cost.items())
        return [Observation(value, dict(labels)) for labels, value in totals]

    def observe_usage(self, _: CallbackOptions) -> Iterable[Observation]:
        with self._lock:
            totals = list(self._usage.items())
        return [Observation(value, dict(labels)) for labels, value in totals]
