"""The in-app recorder: per provider operation counts in a ring of time buckets.

Each provider operation owns a ring of ``horizon / bucket`` buckets; a bucket holds the calls,
successes, errors by type, latency sum/min/max and a latency histogram of the calls that reached
the provider in its time slot, plus rejections by reason and breaker openings. Recording touches
one bucket (a few additions), so memory is bounded by the number of provider operations, not by
traffic. Active health checks go to their own small store and never into request counts.

Slot ``s`` holds the events of ``(s * bucket, (s + 1) * bucket]``, and an interval ``(start, end]``
covers every slot that overlaps it: exactly the interval when both ends are multiples of the
bucket, otherwise up to one bucket more at each end.

The shared state store is not recorded: :meth:`Recorder.state_backends` reads its health when the
evaluator asks, as Prometheus reads ``gateway_state_backend_up`` when it scrapes; likewise
:meth:`Recorder.saturation` reads the calls in flight and the limits. The event-loop lag of this
process is a histogram per time bucket (one ring, no key), reported under :attr:`Recorder.instance`.
"""

from __future__ import annotations

import bisect
import math
import operator
import socket
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Literal

from ..calls import LATENCY_BUCKETS, LOOP_LAG_BUCKETS, CallEvent, CallSpec, ErrorType
from ..resilience.shared_state import StateHealth
from .buckets import Aggregate, Bucket, LagBucket, accumulate, cumulative, merge, ring_size, slot_of, slots_between
from .promql import bucket_quantile
from .stats import Key, WindowStats

STATE_VALUES = {"closed": 0, "half-open": 1, "open": 2}
_TRANSITIONS_KEPT = 256
_CHECKS_KEPT = 60


class _Series:
    """The ring of one provider operation and its breaker transitions."""

    __slots__ = ("last_error", "ring", "state", "transitions")

    def __init__(self, size: int) -> None:
        self.ring: list[Bucket | None] = [None] * size
        self.state = "closed"
        self.transitions: deque[tuple[float, str]] = deque(maxlen=_TRANSITIONS_KEPT)
        self.last_error: tuple[float, str] | None = None


@dataclass(frozen=True)
class LastError:
    timestamp: float
    error_type: str


@dataclass(frozen=True)
class HealthCheck:
    """One active health check."""

    timestamp: float
    ok: bool
    latency_ms: float
    error_type: str | None


class Recorder:
    """Rolling per provider operation statistics, fed by the pipeline as a ``CallObserver``."""

    def __init__(
        self,
        bucket: float = 10.0,
        horizon: float = 3600.0,
        clock: Callable[[], float] = time.time,
        reset_timeouts: Mapping[str, float] | None = None,
        instance: str | None = None,
    ) -> None:
        self.bucket = bucket
        self.horizon = horizon
        self.clock = clock
        self.started_at = clock()
        self._size = ring_size(horizon, bucket)
        self._series: dict[Key, _Series] = {}
        self._checks: dict[Key, deque[HealthCheck]] = {}
        self._reset_timeouts = dict(reset_timeouts or {})
        self.state_health: Callable[[], StateHealth] | None = None
        """Where rate limits and breakers live and whether that answers (set by the app)."""
        self.saturation_reader: Callable[[], Mapping[str, tuple[int, int]]] | None = None
        """Per provider, ``(calls in flight now, limit)`` in this process (set by the app)."""
        self.spend_reader: Callable[[float], Mapping[tuple[str, str], float]] | None = None
        """USD per ``(provider, period)`` spent this UTC day and month at a time (set by the app)."""
        self.instance: str = instance or socket.gethostname()
        """This replica's ``instance`` label on ``GatewayEventLoopLagHigh`` (default: the host name)."""
        self._lag: list[LagBucket | None] = [None] * self._size
        self._sealed: dict[tuple[str, Key, float], tuple[range, Bucket]] = {}
        """By (view, key, window): the slots of the window that no longer change, and their sum,
        slid along as the window moves (add the slots sealed since, remove those that left), so an
        evaluation adds up only what changed since the last one, not the whole window."""

    # -- recording (the pipeline's CallObserver hooks) --------------------------------------

    def on_call(self, event: CallEvent) -> None:
        spec = event.spec
        if event.health_check:
            self.record_check(spec.provider, spec.operation, event.outcome == "success",
                              event.duration, event.error_type)
        else:
            self.record(spec.provider, spec.operation, event.outcome == "success", event.duration,
                        event.error_type)
            if event.context.cost_usd is not None and event.outcome == "success":
                self._bucket((spec.provider, spec.operation), self.clock()).cost += event.context.cost_usd

    def on_rejection(self, spec: CallSpec, reason: ErrorType) -> None:
        rejections = self._bucket((spec.provider, spec.operation), self.clock()).rejections
        rejections[reason] = rejections.get(reason, 0) + 1

    def on_breaker_change(self, spec: CallSpec, old: str, new: str) -> None:
        key = (spec.provider, spec.operation)
        now = self.clock()
        series = self._series.get(key) or self._add(key)
        series.state = new
        series.transitions.append((now, new))
        if new == "open":
            self._bucket(key, now).openings += 1

    def record(
        self, provider: str, operation: str, success: bool, seconds: float, error_type: str | None = None
    ) -> None:
        """One call that reached the provider."""
        key = (provider, operation)
        now = self.clock()
        b = self._bucket(key, now)
        b.requests += 1
        if success:
            b.successes += 1
        else:
            error = error_type or "unknown"
            b.errors[error] = b.errors.get(error, 0) + 1
            self._series[key].last_error = (now, error)
        b.latency_sum += seconds
        if seconds < b.latency_min:  # noqa: PLR1730 - hot path: cheaper than calling min()
            b.latency_min = seconds
        if seconds > b.latency_max:  # noqa: PLR1730
            b.latency_max = seconds
        b.histogram[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1

    def record_check(
        self, provider: str, operation: str, ok: bool, seconds: float, error_type: str | None = None
    ) -> None:
        """One active health check, kept apart from request statistics."""
        checks = self._checks.get((provider, operation))
        if checks is None:
            checks = self._checks[(provider, operation)] = deque(maxlen=_CHECKS_KEPT)
        checks.append(HealthCheck(self.clock(), ok, seconds * 1000, None if ok else error_type))

    def record_loop_lag(self, seconds: float) -> None:
        """One measurement of this process's event-loop lag."""
        slot = slot_of(self.clock(), self.bucket)
        b = self._lag[slot % self._size]
        if b is None or b.slot != slot:
            b = self._lag[slot % self._size] = LagBucket(slot)
        b.histogram[bisect.bisect_left(LOOP_LAG_BUCKETS, seconds)] += 1

    def _bucket(self, key: Key, now: float) -> Bucket:
        series = self._series.get(key) or self._add(key)
        slot = slot_of(now, self.bucket)
        b = series.ring[slot % self._size]
        if b is None or b.slot != slot:
            b = series.ring[slot % self._size] = Bucket(slot)
        return b

    def _add(self, key: Key) -> _Series:
        series = self._series[key] = _Series(self._size)
        return series

    # -- reading ---------------------------------------------------------------------------

    @property
    def view(self) -> Literal["fleet", "local"]:
        """Whose numbers the reads are: this process's (the fleet's in :class:`~app.monitoring.fleet.FleetRecorder`)."""
        return "local"

    def keys(self) -> list[Key]:
        """Every provider operation seen so far, sorted."""
        return sorted(self._series)

    def breaker_state(self, key: Key) -> str:
        series = self._series.get(key)
        return series.state if series else "closed"

    def rejecting(self, key: Key, now: float) -> bool:
        """Whether the breaker of ``key`` is open and still inside its reset timeout."""
        series = self._series.get(key)
        if series is None or series.state != "open" or not series.transitions:
            return False
        opened_at = series.transitions[-1][0]
        return now < opened_at + self._reset_timeouts.get(key[0], math.inf)

    def last_error(self, key: Key) -> LastError | None:
        series = self._series.get(key)
        return LastError(*series.last_error) if series and series.last_error else None

    def health_checks(self, provider: str) -> list[HealthCheck]:
        """The latest active health checks of ``provider`` (any operation), oldest first."""
        found = [c for (p, _), checks in self._checks.items() if p == provider for c in checks]
        return sorted(found, key=lambda check: check.timestamp)

    def _slots(self, start: float, end: float) -> range:
        """The slots that cover ``(start, end]`` and are still in the ring."""
        slots = slots_between(start, end, self.bucket)
        return range(max(slots.start, slots.stop - self._size), slots.stop)

    def aggregate(self, keys: Iterable[Key], start: float, end: float) -> Aggregate:
        """Everything recorded for ``keys`` in ``(start, end]``, at bucket granularity."""
        slots = self._slots(start, end)
        return merge(b for key in keys for b in self._buckets(key, slots))

    def _sealed_sum(self, view: str, key: Key, window: float, sealed: range, current: int) -> Bucket:
        """The sum of ``sealed``, slid from the last one of this window (computed afresh when that
        does not overlap, or a slot that left it may already be overwritten in the ring)."""
        found = self._sealed.get((view, key, window))
        if found is not None and found[0] == sealed:
            return found[1]
        if (found is None or not found[0].start <= sealed.start <= found[0].stop <= sealed.stop
                or found[0].start <= current - self._size):
            total = Bucket(-1)
            for b in self._buckets(key, sealed):
                accumulate(total, b)
        else:
            before, total = found
            for b in self._buckets(key, range(before.stop, sealed.stop)):
                accumulate(total, b)
            for b in self._buckets(key, range(before.start, sealed.start)):
                accumulate(total, b, -1)
        self._sealed[(view, key, window)] = (sealed, total)
        return total

    def restate(self, slot: int, before: Mapping[Key, Bucket], after: Mapping[Key, Bucket]) -> None:
        """The fleet's ``slot`` changed from ``before`` to ``after`` (late deltas of another
        replica): correct the sealed sums that hold it."""
        for (view, key, _), (sealed, total) in self._sealed.items():
            if view == "fleet" and slot in sealed:
                if (old := before.get(key)) is not None:
                    accumulate(total, old, -1)
                if (new := after.get(key)) is not None:
                    accumulate(total, new)

    def forget_sealed(self) -> None:
        """Drop every sealed sum (the fleet's history was read again)."""
        self._sealed = {}

    def _buckets(self, key: Key, slots: range) -> Iterator[Bucket]:
        """The buckets of ``key`` in ``slots`` that hold something (the fleet view reads others)."""
        series = self._series.get(key)
        if series is None:
            return
        for slot in slots:
            b = series.ring[slot % self._size]
            if b is not None and b.slot == slot:
                yield b

    def window_stats(self, now: float, window: float) -> dict[Key, WindowStats]:
        """The alert conditions' inputs for every provider operation, counted exactly."""
        stats: dict[Key, WindowStats] = {}
        slots = self._slots(now - window, now)
        current = slot_of(self.clock(), self.bucket)  # the slot recording now, and later ones, may grow
        sealed = range(slots.start, max(slots.start, min(slots.stop, current)))
        growing = range(sealed.stop, slots.stop)
        view = self.view
        for key in self.keys():
            total = self._sealed_sum(view, key, window, sealed, current)
            agg = merge([total, *self._buckets(key, growing)])
            stats[key] = WindowStats(
                attempted=float(agg.requests),
                succeeded=float(agg.successes),
                buckets=agg.cumulative(),
                circuit_state=STATE_VALUES.get(self.breaker_state(key), 0),
                circuit_openings=float(agg.openings),
                rate_limited=float(agg.rejections.get(ErrorType.RATE_LIMITED, 0)),
                overloaded=float(agg.rejections.get(ErrorType.OVERLOADED, 0)),
                cost_usd=agg.cost,
            )
        return stats

    def spend_to_date(self, now: float) -> Mapping[tuple[str, str], float]:
        """USD per ``(provider, period)`` spent this UTC day and month; nothing until
        :attr:`spend_reader` is set."""
        return self.spend_reader(now) if self.spend_reader is not None else {}

    def saturation(self, now: float) -> dict[str, float]:
        """Per provider, calls in flight / limit in this process now (the only replica it sees);
        nothing until :attr:`saturation_reader` is set. A limit of 0 divides as PromQL does."""
        if self.saturation_reader is None:
            return {}
        shares: dict[str, float] = {}
        for provider, (in_flight, limit) in self.saturation_reader().items():
            if limit > 0:
                shares[provider] = in_flight / limit
            elif in_flight > 0:
                shares[provider] = math.inf
        return shares

    def loop_lag(self, now: float, window: float) -> dict[str, tuple[tuple[float, float], ...]]:
        """This process's event-loop lag histogram over ``(now - window, now]``, under
        :attr:`instance`; nothing when the window holds no measurement."""
        counts = [0] * (len(LOOP_LAG_BUCKETS) + 1)
        for slot in self._slots(now - window, now):
            b = self._lag[slot % self._size]
            if b is not None and b.slot == slot:
                counts = list(map(operator.add, counts, b.histogram))
        return {self.instance: cumulative(LOOP_LAG_BUCKETS, counts)} if any(counts) else {}

    def loop_lag_p99(self, now: float, window: float) -> float | None:
        """Seconds: the p99 event-loop lag over the window, as ``GatewayEventLoopLagHigh`` computes
        it; None without measurements."""
        buckets = self.loop_lag(now, window).get(self.instance)
        return bucket_quantile(0.99, buckets) if buckets else None

    def state_backends(self, now: float) -> dict[str, float]:
        """``gateway_state_backend_up`` of this replica now; nothing until :attr:`state_health` is set."""
        if self.state_health is None:
            return {}
        health = self.state_health()
        return {health.backend: 1.0 if health.status == "up" else 0.0}

    def availability(self, keys: Iterable[Key], start: float, end: float) -> float | None:
        """Mean over ``keys`` of the share of ``(start, end]`` their breaker was not rejecting
        calls; None for an interval before the recorder started.

        A breaker rejects from its opening until its next state change or until its reset
        timeout lets a trial call through, whichever comes first.
        """
        start = max(start, self.started_at)
        if end <= start:
            return None
        shares = [self._available_share(key, start, end) for key in keys]
        return sum(shares) / len(shares) if shares else 1.0

    def _available_share(self, key: Key, start: float, end: float) -> float:
        series = self._series.get(key)
        if series is None:
            return 1.0
        reset = self._reset_timeouts.get(key[0], math.inf)
        transitions = list(series.transitions)
        rejecting = 0.0
        for i, (at, state) in enumerate(transitions):
            if state != "open":
                continue
            until = transitions[i + 1][0] if i + 1 < len(transitions) else math.inf
            until = min(until, at + reset, end)
            rejecting += max(0.0, until - max(at, start))
        return 1.0 - rejecting / (end - start)
