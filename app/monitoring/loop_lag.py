"""How late the event loop runs a timer: the gateway's own saturation, apart from provider latency.

A provider that is slow shows in ``provider_client_request_duration_seconds``; a gateway that is
CPU-bound or blocked shows here, because every timer, and every request, then waits for the loop.
Like Node's ``monitorEventLoopDelay``: a timer every :data:`INTERVAL` seconds, and how late it fired.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from ..background import cancel

INTERVAL = 0.1
"""Seconds between probes: ten samples a second (3,000 in a 5-minute window) for a p99."""


class LoopLagProbe:
    """Feeds each measured lag, in seconds, to every sink while it runs."""

    def __init__(self, sinks: Sequence[Callable[[float], None]], interval: float = INTERVAL) -> None:
        self.sinks = tuple(sinks)
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="event-loop-lag")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel(task)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + self.interval
            await asyncio.sleep(self.interval)
            lag = max(0.0, loop.time() - due)
            for sink in self.sinks:
                sink(lag)
