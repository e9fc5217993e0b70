"""Per-provider moving-window rate limits on the ``limits`` library."""

from __future__ import annotations

import math
import time
from collections import deque
from itertools import repeat

from limits import RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter

from ..calls import ErrorType, GatewayError


class MovingWindowMemoryStorage(MemoryStorage):
    """``limits``' async in-memory storage, with moving windows kept oldest first in a deque.

    The stock storage prepends each hit to a list of every hit of the window and sweeps expired
    hits from a background task (one ``asyncio.to_thread`` round trip per sweep, holding the key's
    lock): each hit costs time in proportion to the hits in the window (limits issue #268; what
    that cost here is in bench/README.md). Here a hit appends one
    timestamp and drops the expired ones from the front, so it costs the same whatever the limit,
    and a window never holds more than ``limit`` timestamps. Admission is the stock one: a hit
    fits while fewer than ``limit`` hits are younger than the window. Every other strategy and
    storage method is ``limits``' own.
    """

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options: str) -> None:
        super().__init__(uri, wrap_exceptions, **options)
        self.windows: dict[str, deque[float]] = {}

    def _window(self, key: str, expiry: int, now: float) -> deque[float]:
        """The hits of ``key`` younger than ``expiry`` seconds (expired ones are dropped)."""
        hits = self.windows.setdefault(key, deque())
        cutoff = now - expiry
        while hits and hits[0] < cutoff:
            hits.popleft()
        return hits

    async def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        now = time.time()
        hits = self._window(key, expiry, now)
        if amount > limit or len(hits) + amount > limit:
            return False
        hits.extend(repeat(now, amount))
        return True

    async def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        now = time.time()
        hits = self._window(key, expiry, now)
        return (hits[0], len(hits)) if hits else (now, 0)

    async def clear(self, key: str) -> None:
        self.windows.pop(key, None)
        await super().clear(key)

    async def reset(self) -> int | None:
        windows = len(self.windows)
        self.windows.clear()
        return max(windows, await super().reset() or 0)


class RateLimiter:
    """``limit`` calls per ``window`` seconds for each key, in memory or in a shared storage."""

    def __init__(self, storage: Storage | None = None) -> None:
        self.storage = storage or MovingWindowMemoryStorage()
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
