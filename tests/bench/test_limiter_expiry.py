"""The in-memory limiter sweeps expired hits at most once per interval (per hit, the stock
``limits`` storage costs a thread round trip and a copy of the window: see bench/README.md,
"Overhead"), still admits exactly its limit, and still forgets hits once they expire."""

from __future__ import annotations

import asyncio

import pytest

from app.resilience import ratelimit
from app.resilience.errors import ErrorType, GatewayError
from app.resilience.ratelimit import RateLimiter, ThrottledExpiryMemoryStorage


async def test_many_hits_start_one_sweep_and_the_limit_still_holds() -> None:
    limiter = RateLimiter()
    storage = limiter.storage
    assert isinstance(storage, ThrottledExpiryMemoryStorage)
    await limiter.hit("sarvam", 50, 1)
    sweep = storage.timer
    assert sweep is not None
    for _ in range(49):
        await sweep  # the stock storage starts a new sweep on the next hit once one has ended
        await limiter.hit("sarvam", 50, 1)
        assert storage.timer is sweep, "a hit within the interval started another sweep"
    with pytest.raises(GatewayError) as refused:
        await limiter.hit("sarvam", 50, 1)
    assert refused.value.error_type is ErrorType.RATE_LIMITED
    assert await limiter.remaining("sarvam", 50, 1) == 0


async def test_expired_hits_are_swept_after_the_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ratelimit, "EXPIRY_INTERVAL", 0.2)
    limiter = RateLimiter()
    storage = limiter.storage
    assert isinstance(storage, ThrottledExpiryMemoryStorage)
    for _ in range(20):
        await limiter.hit("deepgram", 100, 1)
    await asyncio.sleep(1.3)  # the 1 s window has passed, and the sweep interval with it
    assert await limiter.remaining("deepgram", 100, 1) == 100
    await limiter.hit("deepgram", 100, 1)  # starts a sweep
    sweep = storage.timer
    assert sweep is not None
    await sweep
    [window] = storage.events.values()
    assert len(window) == 1  # only the last hit is left
