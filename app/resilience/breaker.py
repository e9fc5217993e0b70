"""An asyncio circuit breaker that drives pybreaker's state machine, storage and listeners.

pybreaker's own async support needs Tornado and holds its lock across the call. Here the lock
is held only while the state is read or changed, never across an ``await``; the provider call
runs in between. In half-open, exactly one trial call is let through; every other caller is
rejected until the trial ends.

With shared state (``STATE_REDIS_URL``) the breaker keeps its state in a :class:`MirroredStorage`:
before each call the pipeline loads the cluster's view into it (:meth:`AsyncCircuitBreaker.acquire_shared`),
and what this replica changes is collected as :class:`BreakerChanges` for the shared store to write
back. pybreaker stays the state machine and its listeners still see every transition.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pybreaker

from ..calls import ErrorType, GatewayError

STATE_VALUES = {pybreaker.STATE_CLOSED: 0, pybreaker.STATE_HALF_OPEN: 1, pybreaker.STATE_OPEN: 2}


@dataclass(frozen=True)
class Permit:
    """Leave to make one call; ``trial`` when it is the half-open trial call."""

    trial: bool


@dataclass(frozen=True)
class BreakerSnapshot:
    """A breaker as the shared store holds it, read at the start of one call."""

    state: str
    fail_counter: int
    opened_at: float | None
    """Epoch seconds of the latest opening."""
    trial: bool
    """The store granted this call the half-open trial of the whole cluster."""
    generation: int
    """The mirror's change count when the read was sent (see :meth:`MirroredStorage.load`)."""


@dataclass
class BreakerChanges:
    """What one replica changed in a breaker since its last write to the shared store."""

    failures: int = 0
    """Failures to add to the shared counter (or its new value when ``reset``)."""
    reset: bool = False
    state: str | None = None
    opened_at: float | None = None
    trial_over: bool = False
    """The half-open trial ended here (closed, reopened or abandoned): others may try."""
    generation: int = 0


@dataclass
class _Local:
    state: str = pybreaker.STATE_CLOSED
    counter: int = 0
    success_counter: int = 0
    opened_at: datetime | None = None


class MirroredStorage(pybreaker.CircuitBreakerStorage):
    """pybreaker storage in memory that mirrors a shared store without doing I/O itself.

    Reads are local. Every change pybreaker makes is applied locally and folded into a pending
    :class:`BreakerChanges` (taken by :meth:`take_changes` for the store to write); a snapshot read
    from the store is loaded with :meth:`load`, without being echoed back as a change.
    """

    def __init__(self) -> None:
        super().__init__("mirrored")
        self._local = _Local()
        self._pending: BreakerChanges | None = None
        self._quiet = False
        self.changed = 0
        """Count of local changes so far."""
        self.settled = 0
        """The change count the shared store has confirmed."""

    # -- pybreaker's storage interface -------------------------------------------------------

    @property
    def state(self) -> str:
        return self._local.state

    @state.setter
    def state(self, state: str) -> None:
        self._local.state = state
        changes = self._change()
        if changes is not None:
            changes.state = state
            changes.trial_over = changes.trial_over or state != pybreaker.STATE_HALF_OPEN

    def increment_counter(self) -> None:
        self._local.counter += 1
        changes = self._change()
        if changes is not None:
            changes.failures += 1

    def reset_counter(self) -> None:
        if self._local.counter == 0 and (self._pending is None or self._pending.failures == 0):
            return  # nothing to say: keeps successes free of writes
        self._local.counter = 0
        changes = self._change()
        if changes is not None:
            changes.failures, changes.reset = 0, True

    def increment_success_counter(self) -> None:
        self._local.success_counter += 1

    def reset_success_counter(self) -> None:
        self._local.success_counter = 0

    @property
    def counter(self) -> int:
        return self._local.counter

    @property
    def success_counter(self) -> int:
        return self._local.success_counter

    @property
    def opened_at(self) -> datetime | None:
        return self._local.opened_at

    @opened_at.setter
    def opened_at(self, value: datetime) -> None:
        self._local.opened_at = value
        changes = self._change()
        if changes is not None:
            changes.opened_at = value.timestamp()

    # -- the mirror ----------------------------------------------------------------------------

    @property
    def dirty(self) -> bool:
        return self._pending is not None

    def abandon_trial(self) -> None:
        """Record that a granted trial ended without a verdict (the caller went away)."""
        changes = self._change()
        if changes is not None:
            changes.trial_over = True

    def take_changes(self) -> BreakerChanges | None:
        """The pending changes, now owned by the writer (which calls :meth:`confirm` after)."""
        changes, self._pending = self._pending, None
        if changes is not None:
            changes.generation = self.changed
        return changes

    def confirm(self, generation: int) -> None:
        self.settled = max(self.settled, generation)

    def load(self, snapshot: BreakerSnapshot) -> bool:
        """Take the store's state, unless this replica changed the breaker since the read was sent
        or has changes the store has not confirmed (then the local state is newer). Returns
        whether the snapshot was taken."""
        if snapshot.generation != self.changed or self.settled != self.changed:
            return False
        self._local.state = snapshot.state
        self._local.counter = snapshot.fail_counter
        self._local.opened_at = (datetime.fromtimestamp(snapshot.opened_at, UTC)
                                 if snapshot.opened_at is not None else None)
        return True

    @contextlib.contextmanager
    def quiet(self) -> Iterator[None]:
        """Changes made inside are local only (pybreaker catching up with a loaded state)."""
        self._quiet = True
        try:
            yield
        finally:
            self._quiet = False

    def _change(self) -> BreakerChanges | None:
        if self._quiet:
            return None
        self.changed += 1
        if self._pending is None:
            self._pending = BreakerChanges()
        return self._pending


class _ClockedCircuitBreaker(pybreaker.CircuitBreaker):
    """pybreaker's breaker with the time of each opening read from ``clock`` (epoch seconds), not
    from ``datetime.now``, so that a test can move time on instead of sleeping through the reset."""

    def __init__(self, clock: Callable[[], float], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.clock = clock

    def open(self) -> bool:
        with self._lock:  # pybreaker's own open(), but for the clock
            self._state_storage.opened_at = datetime.fromtimestamp(self.clock(), UTC)
            self.state = self._state_storage.state = pybreaker.STATE_OPEN
            return bool(self._throw_new_error_on_trip)


class AsyncCircuitBreaker:
    def __init__(
        self,
        name: str,
        fail_max: int,
        reset_timeout: float,
        listeners: Sequence[pybreaker.CircuitBreakerListener] = (),
        storage: pybreaker.CircuitBreakerStorage | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._cb = _ClockedCircuitBreaker(
            clock,
            fail_max=fail_max,
            reset_timeout=reset_timeout,
            name=name,
            listeners=list(listeners),
            state_storage=storage,
            throw_new_error_on_trip=False,
        )
        self._mirror = storage if isinstance(storage, MirroredStorage) else None
        self._trial_in_flight = False

    @property
    def name(self) -> str:
        return self._cb.name or ""

    @property
    def state(self) -> str:
        """``closed``, ``half-open`` or ``open``, as pybreaker names them."""
        return str(self._cb.state.name)

    @property
    def state_value(self) -> int:
        """0 closed, 1 half-open, 2 open: the ``provider_circuit_state`` gauge."""
        return STATE_VALUES[self.state]

    @property
    def fail_counter(self) -> int:
        return int(self._cb.fail_counter)

    @property
    def opened_at(self) -> datetime | None:
        opened: datetime | None = self._cb._state_storage.opened_at
        return opened

    def retry_after(self) -> float:
        """Seconds until an open breaker lets its next trial call through (0 when not open)."""
        opened = self.opened_at
        if self.state != pybreaker.STATE_OPEN or opened is None:
            return 0.0
        remaining = self._cb.reset_timeout - (self._cb.clock() - opened.timestamp())
        return max(0.0, remaining)

    def acquire(self) -> Permit:
        """Leave to call now, or :class:`GatewayError` ``circuit_open`` with ``Retry-After``."""
        with self._cb._lock:
            state = self.state
            if state == pybreaker.STATE_OPEN:
                remaining = self.retry_after()
                if remaining > 0:
                    raise self._rejection(remaining)
                self._cb.half_open()
                state = pybreaker.STATE_HALF_OPEN
                self._trial_in_flight = False
            if state == pybreaker.STATE_HALF_OPEN:
                if self._trial_in_flight:
                    raise self._rejection(1.0)
                self._trial_in_flight = True
                return Permit(trial=True)
            return Permit(trial=False)

    def acquire_shared(self, snapshot: BreakerSnapshot) -> Permit:
        """Like :meth:`acquire`, on the cluster's state read from the shared store.

        The store has already moved an open breaker whose reset time passed to half-open and
        said whether this call holds the cluster's one trial.
        """
        mirror = self._mirror
        if mirror is None:
            raise TypeError(f"breaker {self.name} has no mirrored storage")
        with self._cb._lock:
            if mirror.load(snapshot):
                with mirror.quiet():
                    state = self.state  # pybreaker notices the change; listeners hear of it
                    mirror.load(snapshot)  # entering closed resets pybreaker's counter
            else:
                state = self.state
            if state == pybreaker.STATE_OPEN:
                raise self._rejection(max(1.0, self.retry_after()))
            if state == pybreaker.STATE_HALF_OPEN:
                if not snapshot.trial or self._trial_in_flight:
                    raise self._rejection(1.0)
                self._trial_in_flight = True
                return Permit(trial=True)
            # A trial granted while this replica knew newer state is ended by that state's write.
            return Permit(trial=False)

    def record_success(self, permit: Permit) -> None:
        with self._cb._lock:
            self._end_trial(permit)
            self._cb.state._handle_success()

    def record_failure(self, permit: Permit, error: BaseException) -> None:
        """Count a failure; opens the breaker at ``fail_max`` or when the trial failed."""
        with self._cb._lock:
            self._end_trial(permit)
            with contextlib.suppress(Exception):  # pybreaker re-raises from on_failure; the caller has it
                self._cb.state._handle_error(error, reraise=False)

    def release(self, permit: Permit) -> None:
        """End a call that says nothing about the provider (the caller's mistake, or cancelled)."""
        with self._cb._lock:
            if permit.trial and self._trial_in_flight:
                self._trial_in_flight = False
                if self._mirror is not None:
                    self._mirror.abandon_trial()

    def _end_trial(self, permit: Permit) -> None:
        if permit.trial:
            self._trial_in_flight = False

    def _rejection(self, retry_after: float) -> GatewayError:
        return GatewayError(
            ErrorType.CIRCUIT_OPEN,
            f"circuit breaker {self.name} is open after repeated upstream failures",
            retry_after=float(math.ceil(retry_after)),
        )
