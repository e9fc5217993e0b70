"""The pipeline's log observer: failed calls, refusals, breaker transitions and upstream holds,
plus the shared-state transitions, as named events under storm control.

Successful calls are not logged: :meth:`CallLog.on_call` returns at its first test for them, so a
successful call costs one comparison here.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from typing import TYPE_CHECKING, Final

from ..calls import ErrorType
from . import events
from .storm import StormControl

if TYPE_CHECKING:
    from ..calls import CallEvent, CallSpec
    from ..resilience.shared_state import StateHealth

serving_fallback: ContextVar[bool] = ContextVar("serving_fallback", default=False)
"""True while the service manager tries a provider other than the first candidate."""

CLIENT_REFUSALS: Final = frozenset({ErrorType.INVALID_INPUT})
"""Refusals that are the caller's mistake, logged at info; every other refusal is a warning."""


class CallLog:
    """A :class:`~app.calls.CallObserver` (and hold listener) that writes log events."""

    def __init__(self, storm: StormControl) -> None:
        self.storm = storm

    def on_call(self, event: CallEvent) -> None:
        if event.outcome == "success" or event.health_check:
            return
        spec, error = event.spec, event.error
        error_type = event.error_type.value if event.error_type is not None else "unknown"
        if not self.storm.failure_written((events.CALL_FAILED, spec.provider, spec.operation, error_type)):
            return
        attempt = event.context.attempt + 1
        status = error.upstream_status if error is not None else None
        said = f" (HTTP {status})" if status is not None else ""
        events.emit(
            logging.WARNING, events.CALL_FAILED,
            f"{spec.key} failed: {error_type}{said} after {event.duration * 1000:.1f} ms, attempt {attempt}",
            provider=spec.provider, operation=spec.operation, error_type=error_type, status=status,
            duration_ms=round(event.duration * 1000, 3), attempt=attempt, fallback=serving_fallback.get(),
            request_id=error.upstream_request_id if error is not None else None,
            detail=error.detail if error is not None else None,
        )

    def on_rejection(self, spec: CallSpec, reason: ErrorType) -> None:
        if not self.storm.first((events.REJECTED, spec.provider, spec.operation, reason.value)):
            return
        level = logging.INFO if reason in CLIENT_REFUSALS else logging.WARNING
        events.emit(level, events.REJECTED, f"{spec.key} refused: {reason.value}",
                    provider=spec.provider, operation=spec.operation, reason=reason.value)

    def on_breaker_change(self, spec: CallSpec, old: str, new: str) -> None:
        level = logging.WARNING if new == "open" else logging.INFO
        events.emit(level, events.BREAKER_TRANSITION, f"{spec.key} circuit breaker {old} -> {new}",
                    provider=spec.provider, operation=spec.operation, **{"from": old, "to": new})

    def on_hold(self, spec: CallSpec, seconds: float) -> None:
        """The provider answered 429 with ``Retry-After``: calls to it are held for ``seconds``."""
        events.emit(logging.WARNING, events.HOLD,
                    f"{spec.provider} asked for a pause: calls held for {seconds:g}s (Retry-After)",
                    provider=spec.provider, operation=spec.operation, retry_after_s=seconds)

    @staticmethod
    def on_state_backend(health: StateHealth) -> None:
        """The shared state store went down or came back."""
        if health.status == "down":
            message = f"shared state down: {health.detail or 'unreachable'}"
        else:
            message = "shared state up: Redis answers again; rate limits and breakers are shared again"
        events.emit(logging.WARNING if health.status == "down" else logging.INFO, events.STATE_BACKEND_TRANSITION,
                    message, backend=health.backend, status=health.status)
