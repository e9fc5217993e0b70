"""The recorder's second, coarse ring: every signal of the fine ring, at a coarse resolution, kept
long enough for the longest error-budget window (3 days).

The coarse ring is a second :class:`~app.monitoring.recorder.Recorder` (a
:class:`~app.monitoring.fleet.FleetRecorder` with shared state, under its own Redis prefix, so the
fleet shares it like the fine buckets) fed the same events. Its slots are :data:`RESOLUTION`
(5 minutes) wide and it holds :data:`HORIZON` (3 days, 865 slots per provider operation), both
divided by ``SLO_TIME_SCALE``. Any signal a :class:`~app.monitoring.buckets.Bucket` holds is in
both rings, so later signals get their long windows for free.

:class:`Tiered` is what the pipeline observes and the evaluator reads: events go to both rings;
a window shorter than 30 minutes (:data:`COARSE_FROM` coarse slots) and within the fine horizon is
read from the fine ring (exact at the fine bucket), a longer one from the coarse ring (up to one
coarse slot more at its start, and at most the history held). So an evaluation sums a few hundred
fine buckets per provider operation, as before, and each long window's complete coarse slots once
per slot (:meth:`~app.monitoring.recorder.Recorder.window_stats` caches them).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from ..calls import CallEvent, CallSpec, ErrorType
from ..config import SloSettings
from .recorder import Recorder
from .stats import Key, WindowStats

RESOLUTION: Final = 300.0
"""Seconds per coarse slot, unscaled."""
HORIZON: Final = 3 * 86400.0
"""Seconds the coarse ring holds, unscaled: the longest burn-rate window."""
COARSE_FROM: Final = 6
"""Windows of this many coarse slots or more (30 minutes) are read from the coarse ring."""


def resolution(slo: SloSettings) -> float:
    return RESOLUTION / slo.time_scale


def horizon(slo: SloSettings) -> float:
    """The coarse ring's: two slots more than the longest window, so a slot leaving that window is
    still in the ring when the window's sum slides past it."""
    return HORIZON / slo.time_scale + 2 * resolution(slo)


def held(slo: SloSettings) -> float:
    """The longest window the coarse ring serves: the period's budget is read over at most this."""
    return HORIZON / slo.time_scale


class Tiered:
    """Both rings as one call observer and one window source."""

    def __init__(self, fine: Recorder, coarse: Recorder, longest: float) -> None:
        self.fine = fine
        self.coarse = coarse
        self.longest = longest
        """Seconds: the longest window read (a longer one, such as the period, is cut to it)."""

    # -- the pipeline's CallObserver hooks ----------------------------------------------------

    def on_call(self, event: CallEvent) -> None:
        self.fine.on_call(event)
        self.coarse.on_call(event)

    def on_rejection(self, spec: CallSpec, reason: ErrorType) -> None:
        self.fine.on_rejection(spec, reason)
        self.coarse.on_rejection(spec, reason)

    def on_breaker_change(self, spec: CallSpec, old: str, new: str) -> None:
        self.fine.on_breaker_change(spec, old, new)
        self.coarse.on_breaker_change(spec, old, new)

    def record(self, provider: str, operation: str, success: bool, seconds: float,
               error_type: str | None = None) -> None:
        self.fine.record(provider, operation, success, seconds, error_type)
        self.coarse.record(provider, operation, success, seconds, error_type)

    # -- the WindowSource ----------------------------------------------------------------------

    def ring(self, window: float) -> Recorder:
        """The ring that reads ``window``: the fine one for short windows within its horizon."""
        short = window < COARSE_FROM * self.coarse.bucket and window <= self.fine.horizon
        return self.fine if short else self.coarse

    def held(self, window: float) -> float:
        """Seconds of ``window`` the rings hold."""
        return min(window, self.longest, self.ring(window).horizon)

    def window_stats(self, now: float, window: float) -> Mapping[Key, WindowStats]:
        return self.ring(window).window_stats(now, self.held(window))

    def state_backends(self, now: float) -> Mapping[str, float]:
        return self.fine.state_backends(now)

    def saturation(self, now: float) -> Mapping[str, float]:
        return self.fine.saturation(now)

    def spend_to_date(self, now: float) -> Mapping[tuple[str, str], float]:
        return self.fine.spend_to_date(now)

    def loop_lag(self, now: float, window: float) -> Mapping[str, tuple[tuple[float, float], ...]]:
        return self.fine.loop_lag(now, window)
