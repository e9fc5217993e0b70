"""Prometheus's arithmetic, so that in-app numbers equal the rule engine's.

Ported from Prometheus 3.16 (``promql/functions.go`` and ``promql/quantile.go`` of module
v0.316.0), the version ``promtool test rules`` and the stack tests run (``.stack/bin/``).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence

Sample = tuple[float, float]
"""(timestamp in seconds, value)."""

_SMALL_DELTA = 1e-12


def extrapolated_increase(samples: Sequence[Sample], start: float, end: float) -> float | None:
    """``increase()`` of a counter over the samples in ``(start, end]`` (sorted by time): range
    selectors are left-open since Prometheus 3.

    None when fewer than two samples fall in the range (Prometheus drops the series). Counter
    resets add the value before the reset. The difference is extrapolated towards each edge by the
    gap to the edge when that gap is under 1.1 average sample intervals, else by half an
    interval; towards the start never further back than the counter's extrapolated zero.
    """
    return _extrapolated(samples, start, end, rate=False)


def extrapolated_rate(samples: Sequence[Sample], start: float, end: float) -> float | None:
    """``rate()``: the increase per second of the range. Not ``increase / range`` in floating
    point: Prometheus divides the extrapolation factor by the range before it multiplies, and a
    last-digit difference decides a quantile that sits on a bucket bound."""
    return _extrapolated(samples, start, end, rate=True)


def _extrapolated(samples: Sequence[Sample], start: float, end: float, *, rate: bool) -> float | None:
    inside = [s for s in samples if start < s[0] <= end]
    if len(inside) < 2:
        return None
    first_t, first_v = inside[0]
    last_t, last_v = inside[-1]
    result = last_v - first_v
    previous = first_v
    for _, value in inside[1:]:
        if value < previous:
            result += previous
        previous = value
    to_start = first_t - start
    to_end = end - last_t
    sampled = last_t - first_t
    average = sampled / (len(inside) - 1)
    threshold = average * 1.1
    if to_start >= threshold:
        to_start = average / 2
    if result > 0 and first_v >= 0:
        to_start = min(to_start, sampled * (first_v / result))
    if to_end >= threshold:
        to_end = average / 2
    factor = (sampled + to_start + to_end) / sampled
    if rate:
        factor /= end - start
    return result * factor


def bucket_quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float:
    """``histogram_quantile(q, ...)`` over cumulative ``(upper bound, count)`` buckets.

    NaN without a ``+Inf`` bucket or without observations. Linear interpolation within the bucket
    the rank falls in; the lowest bucket interpolates from 0 (when its bound is positive); a rank
    in the ``+Inf`` bucket answers the highest finite bound. Counts are forced monotonic first.
    """
    if math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    ordered = sorted(buckets)
    if not ordered or not math.isinf(ordered[-1][0]):
        return math.nan
    coalesced: list[list[float]] = []
    for bound, count in ordered:
        if coalesced and coalesced[-1][0] == bound:
            coalesced[-1][1] += count
        else:
            coalesced.append([bound, count])
    _ensure_monotonic(coalesced)
    if len(coalesced) < 2:
        return math.nan
    observations = coalesced[-1][1]
    if observations == 0:
        return math.nan
    rank = q * observations
    b = next((i for i in range(len(coalesced) - 1) if coalesced[i][1] >= rank), len(coalesced) - 1)
    if b == len(coalesced) - 1:
        return coalesced[-2][0]
    if b == 0 and coalesced[0][0] <= 0:
        return coalesced[0][0]
    start = 0.0
    end, count = coalesced[b]
    if b > 0:
        start = coalesced[b - 1][0]
        count -= coalesced[b - 1][1]
        rank -= coalesced[b - 1][1]
    return start + (end - start) * (rank / count)


def _ensure_monotonic(buckets: list[list[float]]) -> None:
    previous = buckets[0][1]
    for bucket in buckets[1:]:
        current = bucket[1]
        if current == previous:
            continue
        if _almost_equal(previous, current) or current < previous:
            bucket[1] = previous
            continue
        previous = current


def _almost_equal(a: float, b: float) -> bool:
    """Go's ``almost.Equal`` with the histogram_quantile tolerance."""
    if a == b:
        return True
    diff = abs(a - b)
    total = abs(a) + abs(b)
    if a == 0 or b == 0 or total < sys.float_info.min:
        return diff < _SMALL_DELTA * sys.float_info.min
    return diff / min(total, sys.float_info.max) < _SMALL_DELTA
