"""Per-provider moving-window rate limits on the ``limits`` library."""

from __future__ import annotations

import math
import time

from limits import RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter

from .errors import ErrorType, GatewayError


class RateLimiter:
    """``limit`` calls per ``window`` seconds for each key, in memory or in a shared storage."""

    def __init__(self, storage: Storage | None = None) -> None:
        self.storage = storage or MemoryStorage()
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
