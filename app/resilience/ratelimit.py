"""Per-provider moving-window rate limits on the ``limits`` library."""

from __future__ import annotations

import math
import time
from typing import Final

from limits import RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter

from .errors import ErrorType, GatewayError

EXPIRY_INTERVAL: Final = 1.0
"""Seconds between two sweeps of expired hits out of the in-memory windows."""


class ThrottledExpiryMemoryStorage(MemoryStorage):
    """``limits``' async in-memory storage, sweeping expired hits at most every
    :data:`EXPIRY_INTERVAL` seconds instead of after every hit.

    The stock storage starts a new sweep on the first hit after the last one ended: one task,
    one ``asyncio.to_thread`` round trip (holding the key's lock, so that hits queue behind it)
    and one copy of the window's list of hits, per provider call (0.09 ms of CPU per call at
    700 calls/s here). Admission is unchanged: a hit is checked against the timestamps of the
    window, and hits that expired but are not swept yet are older than the window. Swept later,
    a window holds at most :data:`EXPIRY_INTERVAL` seconds of extra hits.
    """

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options: str) -> None:
        super().__init__(uri, wrap_exceptions, **options)
        self._next_sweep = 0.0

    async def _MemoryStorage__schedule_expiry(self) -> None:  # the stock storage's hook, called per hit
        now = time.monotonic()
        if now >= self._next_sweep:
            self._next_sweep = now + EXPIRY_INTERVAL
            await super()._MemoryStorage__schedule_expiry()  # type: ignore[misc]  # mypy does not mangle


class RateLimiter:
    """``limit`` calls per ``window`` seconds for each key, in memory or in a shared storage."""

    def __init__(self, storage: Storage | None = None) -> None:
        self.storage = storage or ThrottledExpiryMemoryStorage()
        self._strategy = MovingWindowRateLimiter(self.storage)

    @staticmethod
    def item(limit: int, window: float) -> RateLimitItemPerSecond:
        return RateLimitItemPerSecond(limit, max(1, math.ceil(window)))

    async def hit(self, key: str, limit: int, window: float) -> None:
        """Spend one token or raise ``rate_limited`` with the seconds until one is free."""
        item = self.item(limit, window)
        if await self._strategy.hit(item, key):
            return
        stats = await self._strategy.get_window_stats(item, key)
        raise rate_limited(key, limit, window, stats.reset_time - time.time())

    async def remaining(self, key: str, limit: int, window: float) -> int:
        """Calls still admitted in the current window (rate-limit headroom)."""
        stats = await self._strategy.get_window_stats(self.item(limit, window), key)
        return int(stats.remaining)

    async def clear(self, key: str, limit: int, window: float) -> None:
        await self._strategy.clear(self.item(limit, window), key)


def rate_limited(key: str, limit: int, window: float, wait: float) -> GatewayError:
    """The ``rate_limited`` rejection, with ``Retry-After`` the seconds until a token is free."""
    return GatewayError(
        ErrorType.RATE_LIMITED,
        f"rate limit of {limit} calls per {window:g}s reached for {key}",
        retry_after=float(max(1, math.ceil(wait))),
    )
