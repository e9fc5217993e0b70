"""An asyncio circuit breaker that drives pybreaker's state machine, storage and listeners.

pybreaker's own async support needs Tornado and holds its lock across the call. Here the lock
is held only while the state is read or changed, never across an ``await``; the provider call
runs in between. In half-open, exactly one trial call is let through; every other caller is
rejected until the trial ends.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import pybreaker

from .errors import ErrorType, GatewayError

STATE_VALUES = {pybreaker.STATE_CLOSED: 0, pybreaker.STATE_HALF_OPEN: 1, pybreaker.STATE_OPEN: 2}


@dataclass(frozen=True)
class Permit:
    """Leave to make one call; ``trial`` when it is the half-open trial call."""

    trial: bool


class AsyncCircuitBreaker:
    def __init__(
        self,
        name: str,
        fail_max: int,
        reset_timeout: float,
        listeners: Sequence[pybreaker.CircuitBreakerListener] = (),
        storage: pybreaker.CircuitBreakerStorage | None = None,
    ) -> None:
        self._cb = pybreaker.CircuitBreaker(
            fail_max=fail_max,
            reset_timeout=reset_timeout,
            name=name,
            listeners=list(listeners),
            state_storage=storage,
            throw_new_error_on_trip=False,
        )
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
        remaining = self._cb.reset_timeout - (datetime.now(UTC) - opened).total_seconds()
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

    def record_success(self, permit: Permit) -> None:
        with self._cb._lock:
            self._end_trial(permit)
            self._cb.state._handle_success()

    def record_failure(self, permit: Permit, error: BaseException) -> None:
        """Count a failure; opens the breaker at ``fail_max`` or when the trial failed."""
        with self._cb._lock:
            self._end_trial(permit)
            try:
                self._cb.state._handle_error(error, reraise=False)
            except BaseException:  # pybreaker re-raises from on_failure; the caller has the error
                pass

    def release(self, permit: Permit) -> None:
        """End a call that says nothing about the provider (the caller's mistake, or cancelled)."""
        with self._cb._lock:
            if permit.trial and self._trial_in_flight:
                self._trial_in_flight = False

    def _end_trial(self, permit: Permit) -> None:
        if permit.trial:
            self._trial_in_flight = False

    def _rejection(self, retry_after: float) -> GatewayError:
        return GatewayError(
            ErrorType.CIRCUIT_OPEN,
            f"circuit breaker {self.name} is open after repeated upstream failures",
            retry_after=float(math.ceil(retry_after)),
        )
