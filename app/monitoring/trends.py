"""Per-service time series over a window, and whether each signal is improving or degrading.

Points: ``window // step`` consecutive intervals ``(t - step, t]``, the last ending at the end of
the recorder's current bucket (so that points cover whole buckets); each point is stamped with its
end ``t`` and carries the requests that reached the provider, their success
rate, latency average and p50/p95 (histogram interpolation, as in Prometheus), in milliseconds;
rates and latencies are null for an interval without requests.

Availability is the share of the interval during which the service's circuit breakers were not
rejecting calls (from each opening until the next state change, or until the reset timeout lets
a trial call through), averaged over the service's operations; null before the recorder started.
It answers "could callers be served", where the success rate answers "did the calls that were
made succeed".

Direction, per signal, from the points with data: ``insufficient_data`` with fewer than 3;
otherwise a least-squares line through them is significant when its change over the points' span
(slope x span) exceeds a tolerance, 0.01 (one percentage point) for success rate and
availability and 10% of the mean for latency, and the line explains at least half the variance
(r^2 >= 0.5). A significant rise is ``improving`` for the rates and ``degrading`` for latency (and
the reverse for a fall); anything else is ``stable``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from ..config import format_duration, parse_duration
from .recorder import Recorder
from .stats import Key, to_ms

Direction = Literal["improving", "stable", "degrading", "insufficient_data"]
MAX_POINTS = 1000
MIN_POINTS = 3
MIN_R_SQUARED = 0.5
RATE_TOLERANCE = 0.01
LATENCY_TOLERANCE = 0.10


class TrendError(ValueError):
    """A window or step the recorder cannot answer; the message says why."""


@dataclass(frozen=True)
class TrendPoint:
    timestamp: datetime
    """End of the interval the point covers."""
    requests: int
    success_rate: float | None
    availability: float | None
    latency_avg_ms: float | None
    latency_p50_ms: float | None
    latency_p95_ms: float | None


@dataclass(frozen=True)
class TrendDirection:
    success_rate: Direction
    latency_p95: Direction
    availability: Direction


@dataclass(frozen=True)
class Trends:
    service: str
    window: str
    step: str
    points: list[TrendPoint]
    direction: TrendDirection
    view: Literal["fleet", "local"] = "local"
    """Whose calls: every replica's (``fleet``, merged through Redis) or this replica's."""


def parse_window_step(window: str | float, step: str | float, bucket: float, horizon: float) -> tuple[float, float]:
    """Seconds of ``window`` and ``step`` (Prometheus durations or seconds), or :class:`TrendError`."""
    seconds = []
    for name, value in (("window", window), ("step", step)):
        try:
            parsed = parse_duration(value) if isinstance(value, str) else float(value)
        except ValueError:
            raise TrendError(f"{name}: expected a duration such as 5m or 1h, got {value!r}") from None
        if parsed <= 0:
            raise TrendError(f"{name}: must be positive")
        seconds.append(parsed)
    window_s, step_s = seconds
    if step_s < bucket or not math.isclose(step_s / bucket, round(step_s / bucket)):
        raise TrendError(f"step: must be a multiple of the recorder's bucket, {format_duration(bucket)}")
    if window_s > horizon:
        raise TrendError(f"window: must be at most the recorder's horizon, {format_duration(horizon)}")
    if window_s < step_s:
        raise TrendError("window: must be at least one step")
    if window_s / step_s > MAX_POINTS:
        raise TrendError(f"window / step: at most {MAX_POINTS} points")
    return window_s, step_s


def compute_trends(
    recorder: Recorder, service: str, keys: Sequence[Key], window: float, step: float, now: float,
) -> Trends:
    """The trend of ``keys`` (one operation, or every operation of a provider) up to ``now``."""
    count = int(window // step)
    last = math.ceil(now / recorder.bucket) * recorder.bucket
    points = []
    for i in range(count):
        end = last - (count - 1 - i) * step
        agg = recorder.aggregate(keys, end - step, end)
        points.append(TrendPoint(
            timestamp=datetime.fromtimestamp(end, UTC),
            requests=agg.requests,
            success_rate=agg.success_rate,
            availability=recorder.availability(keys, end - step, end),
            latency_avg_ms=to_ms(agg.latency_avg),
            latency_p50_ms=to_ms(agg.quantile(0.5)),
            latency_p95_ms=to_ms(agg.quantile(0.95)),
        ))
    times = [p.timestamp.timestamp() for p in points]
    return Trends(service, format_duration(window), format_duration(step), points, TrendDirection(
        success_rate=direction(times, [p.success_rate for p in points], higher_is_better=True),
        latency_p95=direction(times, [p.latency_p95_ms for p in points], higher_is_better=False),
        availability=direction(times, [p.availability for p in points], higher_is_better=True),
    ), recorder.view)


def direction(times: Sequence[float], values: Sequence[float | None], *, higher_is_better: bool) -> Direction:
    """The significance rule of the module docstring; rates when ``higher_is_better``."""
    xs = [t for t, v in zip(times, values, strict=True) if v is not None]
    ys = [v for v in values if v is not None]
    n = len(ys)
    if n < MIN_POINTS:
        return "insufficient_data"
    mean_x, mean_y = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mean_x) ** 2 for x in xs)
    syy = sum((y - mean_y) ** 2 for y in ys)
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True))
    if sxx == 0 or syy == 0:
        return "stable"
    slope = sxy / sxx
    change = slope * (xs[-1] - xs[0])
    r_squared = sxy * sxy / (sxx * syy)
    tolerance = RATE_TOLERANCE if higher_is_better else LATENCY_TOLERANCE * abs(mean_y)
    if abs(change) <= tolerance or r_squared < MIN_R_SQUARED:
        return "stable"
    return "improving" if (change > 0) == higher_is_better else "degrading"
