"""Storm control: a repeated event becomes a count, written as ``log.summary`` once an interval.

A refusal (``provider.rejected``) is logged the first time its key (event, provider, operation,
reason) is seen; repeats while the storm lasts only increment a counter. Failed calls are logged
one by one up to :data:`FAILED_CALLS_PER_INTERVAL` per provider and interval, then counted too.
A background task writes one summary per counted key every ``LOG_SUMMARY_INTERVAL``, so the count
appears within one interval even when the storm has stopped. A key with no repeat during an
interval (a whole one after it was first written) is forgotten, so the next occurrence after a quiet spell
is logged again.

Everything runs on the event loop of the app (the pipeline's observers and this task), so plain
dicts suffice.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final

from ..background import cancel
from ..calls import ServiceKey
from . import events

FAILED_CALLS_PER_INTERVAL: Final = 10
"""Failed calls logged one by one per provider and interval; the rest are counted."""

Key = tuple[str, str, str, str]
"""(event name, provider, operation, reason or error type)."""


class StormControl:
    """Decides whether an occurrence is written or counted, and writes the counts."""

    def __init__(self, interval: float, failed_call_cap: int = FAILED_CALLS_PER_INTERVAL) -> None:
        self.interval = interval
        self.failed_call_cap = failed_call_cap
        self._known: set[Key] = set()
        self._fresh: set[Key] = set()
        """Keys first written this interval: kept through the next flush, so that a storm whose
        first occurrence falls just before a flush still folds its second one."""
        self._counts: dict[Key, int] = {}
        self._failures: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None

    def first(self, key: Key) -> bool:
        """True when this occurrence is to be written; otherwise it was counted."""
        if key in self._known:
            self._counts[key] = self._counts.get(key, 0) + 1
            return False
        self._known.add(key)
        self._fresh.add(key)
        return True

    def failure_written(self, key: Key) -> bool:
        """True while the provider (``key[1]``) is under its cap this interval; else counted."""
        provider = key[1]
        written = self._failures.get(provider, 0)
        if written < self.failed_call_cap:
            self._failures[provider] = written + 1
            return True
        self._counts[key] = self._counts.get(key, 0) + 1
        return False

    def flush(self) -> None:
        """Write one ``log.summary`` per counted key and start a new interval."""
        counts, self._counts = self._counts, {}
        # Still storming, or first seen this interval: keep folding; quiet for an interval: log the next one again.
        self._known = (self._known & counts.keys()) | self._fresh
        self._fresh = set()
        self._failures.clear()
        for (name, provider, operation, reason), count in counts.items():
            events.emit(
                logging.WARNING, events.SUMMARY,
                f"{ServiceKey(provider, operation)}: {count} more {name} ({reason}) in the last {self.interval:g}s",
                event=name, provider=provider, operation=operation, reason=reason, count=count,
                interval_s=self.interval,
            )

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="log-summaries")

    async def stop(self) -> None:
        """Stop the timer and write what is still counted."""
        await cancel(self._task)
        self._task = None
        self.flush()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            self.flush()
