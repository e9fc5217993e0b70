"""A bulkhead per provider: at most ``P_MAX_CONCURRENCY`` calls in flight to it in this process.

Like Envoy's per-cluster ``max_requests`` and Resilience4j's semaphore ``Bulkhead`` with no wait:
a call over the limit is refused at once (``overloaded``), before any upstream I/O, so a hanging
provider can hold only its own slots and connections, never another provider's. The count is
local to the process even when rate limits and breakers are shared through Redis: what it
protects (connections, memory, the event loop) is the process's own.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..calls import ErrorType, GatewayError

RETRY_AFTER_SECONDS = 1.0
"""``Retry-After`` of an ``overloaded`` refusal: slots free as calls end, usually within a second."""


class Slot:
    """One admitted call's place in a bulkhead; :meth:`release` is idempotent, so every exit path
    (success, failure, cancellation, a stream closed early) may release it without counting twice."""

    __slots__ = ("_bulkhead", "_operation")

    def __init__(self, bulkhead: Bulkhead, operation: str) -> None:
        self._bulkhead: Bulkhead | None = bulkhead
        self._operation = operation

    def release(self) -> None:
        bulkhead, self._bulkhead = self._bulkhead, None
        if bulkhead is not None:
            bulkhead._release(self._operation)


class Bulkhead:
    """Calls in flight to one provider, per operation; refuses past :attr:`limit`."""

    def __init__(self, provider: str, limit: int) -> None:
        self.provider = provider
        self.limit = limit
        self.in_flight = 0
        self._by_operation: dict[str, int] = {}

    def acquire(self, operation: str) -> Slot:
        """A slot for one call; raises ``overloaded`` when :attr:`limit` calls are in flight."""
        if self.in_flight >= self.limit:
            raise GatewayError(
                ErrorType.OVERLOADED,
                f"{self.provider} already has {self.limit} calls in flight from this gateway process",
                retry_after=RETRY_AFTER_SECONDS,
            )
        self.in_flight += 1
        self._by_operation[operation] = self._by_operation.get(operation, 0) + 1
        return Slot(self, operation)

    def _release(self, operation: str) -> None:
        self.in_flight -= 1
        self._by_operation[operation] -= 1

    @property
    def by_operation(self) -> Mapping[str, int]:
        """Calls in flight per operation (operations seen so far, including those at 0)."""
        return self._by_operation
