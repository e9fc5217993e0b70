"""Per-router simulator state: the fault table and the log of received provider requests."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime

import msgspec

from app.simulator.faults import FaultTable

REQUEST_LOG_SIZE = 1000


class RecordedRequest(msgspec.Struct, kw_only=True):
    """A provider request as the simulator received it (never its credentials or body)."""

    provider: str
    operation: str
    method: str
    path: str
    traceparent: str | None
    time: str
    """ISO 8601 UTC time of arrival."""


class RequestLog:
    """The last :data:`REQUEST_LOG_SIZE` provider requests, oldest first."""

    def __init__(self) -> None:
        self._entries: deque[RecordedRequest] = deque(maxlen=REQUEST_LOG_SIZE)

    def record(
        self, *, provider: str, operation: str, method: str, path: str, traceparent: str | None
    ) -> None:
        now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        self._entries.append(
            RecordedRequest(
                provider=provider,
                operation=operation,
                method=method,
                path=path,
                traceparent=traceparent,
                time=now,
            )
        )

    def entries(self, provider: str | None = None) -> list[RecordedRequest]:
        return [entry for entry in self._entries if provider is None or entry.provider == provider]

    def clear(self) -> None:
        self._entries.clear()


@dataclass
class SimulatorState:
    """Everything one simulator router remembers; each router owns its own."""

    faults: FaultTable = field(default_factory=FaultTable)
    requests: RequestLog = field(default_factory=RequestLog)
