"""The in-memory moving window: exactly ``limit`` hits per window, hits forgotten as they age
out, a window that never holds more than ``limit`` timestamps, and ``Retry-After`` counted from
the oldest hit in the window (the limiter's HTTP behaviour is in test_resilience.py)."""

from __future__ import annotations

import time

import pytest

from app.calls import ErrorType, GatewayError
from app.resilience.ratelimit import MovingWindowMemoryStorage, RateLimiter

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(time, "time", fake)
    return fake


async def test_a_moving_window_admits_exactly_its_limit(clock: Clock) -> None:
    limiter = RateLimiter()
    for _ in range(5):
        await limiter.hit("sarvam", 5, 60)
        clock.now += 10  # hits at 0, 10, ... 40 s
    with pytest.raises(GatewayError) as refused:
        await limiter.hit("sarvam", 5, 60)  # at 50 s: five hits in the last minute
    assert refused.value.error_type is ErrorType.RATE_LIMITED
    assert refused.value.retry_after == 10  # the hit at 0 s leaves the window at 60 s
    assert await limiter.remaining("sarvam", 5, 60) == 0
    clock.now += 10.5  # 60.5 s: the first hit has aged out, and only it
    assert await limiter.remaining("sarvam", 5, 60) == 1
    await limiter.hit("sarvam", 5, 60)
    with pytest.raises(GatewayError):
        await limiter.hit("sarvam", 5, 60)
    assert await limiter.remaining("deepgram", 5, 60) == 5  # keys do not share windows


async def test_a_window_holds_only_the_hits_still_in_it(clock: Clock) -> None:
    limiter = RateLimiter()
    storage = limiter.storage
    assert isinstance(storage, MovingWindowMemoryStorage)
    for _ in range(10_000):  # a high limit at 100 calls/s: one second of window is 100 hits
        await limiter.hit("openai", 10**9, 1)
        clock.now += 0.01
    [window] = storage.windows.values()
    assert 99 <= len(window) <= 101
    assert list(window) == sorted(window)


async def test_a_refused_hit_is_not_counted_and_clear_forgets_the_window(clock: Clock) -> None:
    limiter = RateLimiter()
    for _ in range(3):
        await limiter.hit("rag", 3, 1)
    for _ in range(5):
        with pytest.raises(GatewayError):
            await limiter.hit("rag", 3, 1)
    clock.now += 1.5
    assert await limiter.remaining("rag", 3, 1) == 3  # the refusals left nothing behind
    await limiter.hit("rag", 3, 1)
    await limiter.clear("rag", 3, 1)
    assert await limiter.remaining("rag", 3, 1) == 3
    await limiter.hit("rag", 3, 1)
    await limiter.storage.reset()
    assert await limiter.remaining("rag", 3, 1) == 3
