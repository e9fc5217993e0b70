"""The recorder's time buckets and their sums: what one time slot of one provider operation
holds, and the calls of many slots added up (of one replica, or of the fleet)."""

from __future__ import annotations

import math
import operator
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ..calls import LATENCY_BUCKETS, LOOP_LAG_BUCKETS
from .promql import bucket_quantile


def slot_of(t: float, bucket: float) -> int:
    """The time slot that holds ``t``: slot ``s`` holds ``(s * bucket, (s + 1) * bucket]``."""
    return math.ceil(t / bucket) - 1


def ring_size(horizon: float, bucket: float) -> int:
    """Slots a ring keeps so that a window of ``horizon`` ending at any moment is all in it."""
    return math.ceil(horizon / bucket) + 1


def slots_between(start: float, end: float, bucket: float) -> range:
    """The time slots that overlap ``(start, end]``."""
    return range(math.floor(start / bucket), slot_of(end, bucket) + 1)


class Bucket:
    """One time slot of one provider operation (this replica's, or the fleet's merged)."""

    __slots__ = (
        "cost",
        "errors",
        "histogram",
        "latency_max",
        "latency_min",
        "latency_sum",
        "openings",
        "rejections",
        "requests",
        "slot",
        "successes",
    )

    def __init__(self, slot: int) -> None:
        self.slot = slot
        self.requests = 0
        self.successes = 0
        self.latency_sum = 0.0
        self.latency_min = math.inf
        self.latency_max = -math.inf
        self.histogram = [0] * (len(LATENCY_BUCKETS) + 1)
        self.errors: dict[str, int] = {}
        self.rejections: dict[str, int] = {}
        self.openings = 0
        self.cost = 0.0
        """US dollars the priced calls of the slot cost."""


class LagBucket:
    __slots__ = ("histogram", "slot")

    def __init__(self, slot: int) -> None:
        self.slot = slot
        self.histogram = [0] * (len(LOOP_LAG_BUCKETS) + 1)


def cumulative(bounds: tuple[float, ...], counts: Iterable[int]) -> tuple[tuple[float, float], ...]:
    """``(le, count)`` pairs as Prometheus exposes them, ending with ``+Inf``."""
    running = 0
    pairs: list[tuple[float, float]] = []
    for bound, count in zip((*bounds, math.inf), counts, strict=True):
        running += count
        pairs.append((bound, float(running)))
    return tuple(pairs)


@dataclass(frozen=True)
class Aggregate:
    """Calls of one or more provider operations over one interval."""

    requests: int
    successes: int
    latency_sum: float
    latency_min: float | None
    latency_max: float | None
    histogram: tuple[int, ...]
    """Calls per latency bucket (not cumulative); the last entry counts calls above 60 s."""
    errors: Mapping[str, int]
    rejections: Mapping[str, int]
    openings: int
    cost: float = 0.0

    @property
    def success_rate(self) -> float | None:
        return self.successes / self.requests if self.requests else None

    @property
    def latency_avg(self) -> float | None:
        return self.latency_sum / self.requests if self.requests else None

    def cumulative(self) -> tuple[tuple[float, float], ...]:
        """``(le, count)`` pairs as Prometheus exposes them, ending with ``+Inf``."""
        return cumulative(LATENCY_BUCKETS, self.histogram)

    def quantile(self, q: float) -> float | None:
        """Seconds, with ``histogram_quantile``'s interpolation; None without calls."""
        value = bucket_quantile(q, self.cumulative())
        return None if math.isnan(value) else value


def accumulate(total: Bucket, b: Bucket, sign: int = 1) -> None:
    """Add ``b``'s counts to ``total`` (remove them with ``sign`` -1): a sum kept up to date as a
    window slides. Latency minimum and maximum cannot be removed, so such a sum has none."""
    total.requests += sign * b.requests
    total.successes += sign * b.successes
    total.openings += sign * b.openings
    total.latency_sum += sign * b.latency_sum
    total.cost += sign * b.cost
    for i, count in enumerate(b.histogram):
        total.histogram[i] += sign * count
    for name, count in b.errors.items():
        total.errors[str(name)] = total.errors.get(str(name), 0) + sign * count
    for name, count in b.rejections.items():
        total.rejections[str(name)] = total.rejections.get(str(name), 0) + sign * count


def merge(buckets: Iterable[Bucket]) -> Aggregate:
    """The buckets' calls added up (of one replica, or of the fleet)."""
    requests = successes = openings = 0
    latency_sum = cost = 0.0
    latency_min, latency_max = math.inf, -math.inf
    histogram = [0] * (len(LATENCY_BUCKETS) + 1)
    errors: dict[str, int] = {}
    rejections: dict[str, int] = {}
    for b in buckets:
        requests += b.requests
        successes += b.successes
        openings += b.openings
        latency_sum += b.latency_sum
        cost += b.cost
        latency_min = min(latency_min, b.latency_min)
        latency_max = max(latency_max, b.latency_max)
        histogram = list(map(operator.add, histogram, b.histogram))
        for name, count in b.errors.items():
            errors[str(name)] = errors.get(str(name), 0) + count
        for name, count in b.rejections.items():
            rejections[str(name)] = rejections.get(str(name), 0) + count
    return Aggregate(
        requests, successes, latency_sum,
        latency_min if requests else None, latency_max if requests else None,
        tuple(histogram), errors, rejections, openings, cost,
    )
