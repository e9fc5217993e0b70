"""Line charts for the status page: the geometry of an inline SVG, computed server-side.

The template (``templates/status/chart.html``) only draws what :func:`line_chart` computes: the
lines between consecutive points that have data (an interval without calls breaks the line),
a marker per point whose shape says whether it breaches a threshold (circle: within, triangle:
past the warning line, square: past the critical line, so colour is never the only signal), the
threshold lines with their labels, and a text alternative that states the numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

WIDTH, HEIGHT = 480.0, 170.0
LEFT, RIGHT_EDGE, TOP, BOTTOM = 46.0, 384.0, 10.0, 146.0
"""The plot area inside the ``WIDTH`` x ``HEIGHT`` view box; axis and line labels sit outside it."""

Level = Literal["ok", "warning", "critical"]


@dataclass(frozen=True)
class Threshold:
    """A horizontal line that a value breaches when below it (rates) or above it (latency)."""

    value: float
    level: Literal["warning", "critical"]
    below: bool
    """True when values below the line breach it."""
    label: str
    """The line's value for people (``95%``, ``5 s``)."""

    def breached(self, value: float) -> bool:
        return value < self.value if self.below else value > self.value


@dataclass(frozen=True)
class Guide:
    y: float
    label: str
    level: Literal["warning", "critical"]


@dataclass(frozen=True)
class Tick:
    position: float
    label: str


@dataclass(frozen=True)
class Marker:
    x: float
    y: float
    level: Level
    timestamp: datetime
    value: float
    text: str
    """What a tooltip shows: time, value and the line it breaches, if any."""


@dataclass(frozen=True)
class Chart:
    id: str
    title: str
    description: str
    paths: tuple[str, ...]
    """SVG path data, one per run of consecutive points with data."""
    markers: tuple[Marker, ...]
    guides: tuple[Guide, ...]
    x_ticks: tuple[Tick, ...]
    y_ticks: tuple[Tick, ...]
    width: float = WIDTH
    height: float = HEIGHT
    plot_left: float = LEFT
    plot_right: float = RIGHT_EDGE
    plot_top: float = TOP
    plot_bottom: float = BOTTOM


def line_chart(
    *,
    chart_id: str,
    title: str,
    points: Sequence[tuple[datetime, float | None]],
    start: datetime,
    end: datetime,
    y_max: float,
    y_ticks: Sequence[tuple[float, str]],
    thresholds: Sequence[Threshold],
    fmt: Callable[[float], str],
    step_text: str,
) -> Chart:
    """A chart of ``points`` (``None``: no calls in that interval) between ``start`` and ``end``,
    with ``0..y_max`` on the vertical axis, labelled at ``y_ticks`` (value, label); ``fmt`` writes
    a value for people."""
    span = max((end - start).total_seconds(), 1e-9)

    def x_of(t: datetime) -> float:
        return LEFT + (RIGHT_EDGE - LEFT) * min(max((t - start).total_seconds() / span, 0.0), 1.0)

    def y_of(v: float) -> float:
        return BOTTOM - (BOTTOM - TOP) * min(max(v / y_max, 0.0), 1.0)

    ordered = sorted(thresholds, key=lambda t: t.level == "critical", reverse=True)

    def level_of(v: float) -> tuple[Level, Threshold | None]:
        for threshold in ordered:  # critical first: the worst line a value is past
            if threshold.breached(v):
                return threshold.level, threshold
        return "ok", None

    paths: list[str] = []
    run: list[str] = []
    markers: list[Marker] = []
    for t, v in points:
        if v is None:
            if run:
                paths.append(" ".join(run))
            run = []
            continue
        x, y = round(x_of(t), 1), round(y_of(v), 1)
        run.append(f"{'M' if not run else 'L'}{x} {y}")
        level, threshold = level_of(v)
        breach = f", past the {threshold.label} {threshold.level} line" if threshold else ""
        markers.append(Marker(x, y, level, t, v, f"{clock(t, span)} UTC: {fmt(v)}{breach}"))
    if run:
        paths.append(" ".join(run))

    guides = tuple(Guide(round(y_of(t.value), 1), f"{t.label} {t.level}", t.level) for t in thresholds)
    x_ticks = tuple(Tick(round(x_of(t), 1), clock(t, span))
                    for t in (start, start + (end - start) / 2, end))
    return Chart(
        id=chart_id,
        title=title,
        description=describe(points, thresholds, fmt, step_text, start, end, span),
        paths=tuple(paths),
        markers=tuple(markers),
        guides=guides,
        x_ticks=x_ticks,
        y_ticks=tuple(Tick(round(y_of(v), 1), label) for v, label in y_ticks),
    )


def describe(
    points: Sequence[tuple[datetime, float | None]],
    thresholds: Sequence[Threshold],
    fmt: Callable[[float], str],
    step_text: str,
    start: datetime,
    end: datetime,
    span: float,
) -> str:
    """The chart in words: what a screen reader says instead of drawing it."""
    known = [(t, v) for t, v in points if v is not None]
    period = f"from {clock(start, span)} to {clock(end, span)} UTC"
    if not known:
        return f"No calls {period}."
    values = [v for _, v in known]
    last_t, last_v = known[-1]
    parts = [
        f"{len(known)} of {len(points)} intervals of {step_text} had calls {period}.",
        f"Latest {fmt(last_v)} at {clock(last_t, span)} UTC; lowest {fmt(min(values))}, highest {fmt(max(values))}.",
    ]
    for threshold in thresholds:
        count = sum(threshold.breached(v) for v in values)
        side = "below" if threshold.below else "above"
        parts.append(f"{count} {'interval' if count == 1 else 'intervals'} {side} the "
                     f"{threshold.label} {threshold.level} line.")
    return " ".join(parts)


def clock(t: datetime, span: float) -> str:
    """Hours and minutes, with seconds when the chart spans under ten minutes."""
    return t.strftime("%H:%M:%S" if span < 600 else "%H:%M")
