"""Active health checks: every ``HEALTH_CHECK_INTERVAL``, one cheap call per provider through the
pipeline, spending no client rate-limit budget and recorded apart from requests."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from ..background import cancel
from .service import HealthResult, ProviderService

log = logging.getLogger("app.providers")


class ActiveChecks:
    def __init__(self, services: Iterable[ProviderService], interval: float) -> None:
        probes: dict[str, ProviderService] = {}
        for service in services:
            probes.setdefault(service.provider, service)  # each provider's first operation probes it
        self.probes = probes
        self.interval = interval
        self.last: dict[str, HealthResult] = {}
        self._task: asyncio.Task[None] | None = None

    async def run(self) -> dict[str, HealthResult]:
        """Check every provider once; the latest result of each."""
        results = await asyncio.gather(*(svc.health_check() for svc in self.probes.values()))
        for provider, result in zip(self.probes, results, strict=True):
            self.last[provider] = result
        return self.last

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="health-checks")

    async def stop(self) -> None:
        await cancel(self._task)

    async def _loop(self) -> None:
        # The server binds its socket after start-up: a mounted simulator answers a moment later.
        await asyncio.sleep(min(0.25, self.interval))
        while True:
            try:
                await self.run()
            except Exception:  # a failing check must never stop the loop
                log.exception("active health checks failed")
            await asyncio.sleep(self.interval)
