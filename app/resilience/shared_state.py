"""Rate limits, upstream holds and breaker state shared by replicas through Redis (``STATE_REDIS_URL``).

One Redis round trip per provider call: a Lua script checks the provider's ``Retry-After`` hold,
spends a rate-limit token in the ``limits`` moving-window layout (so :attr:`SharedState.limiter`,
a ``limits`` strategy on the same storage, reads the same windows), reads the breaker, moves an
open breaker whose reset time has passed to half-open and grants the cluster's one trial call.
What a replica changes (failures, opening with its time, closing, a provider's hold) is written
back in one ``MULTI``/``EXEC`` when the call ends and before its answer leaves, so the other
replicas see it on their next call; a call that changed nothing writes nothing.

When Redis does not answer, the pipeline serves from the replica's memory limiter and breakers,
:meth:`SharedState.health` says ``down`` (``/health/`` shows the state component degraded), and a
task pings Redis every 1-2 s until it answers; then shared state resumes by itself. Changes made
meanwhile stay local. The same task pings an idle Redis every few seconds, so that health is right
without traffic too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import redis.asyncio as aioredis
from limits.aio.storage import RedisStorage
from redis.asyncio.client import Pipeline as RedisPipeline
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from ..background import cancel
from .breaker import BreakerChanges, BreakerSnapshot, MirroredStorage
from .ratelimit import RateLimiter

log = logging.getLogger("app.resilience.shared_state")

Status = Literal["up", "down"]
Verdict = Literal["admitted", "held", "limited"]

# KEYS: 1 rate-limit list (limits' moving-window layout), 2 provider hold, 3 breaker hash.
# ARGV: 1 now (epoch s), 2 limit, 3 window (s), 4 breaker reset time (s), 5 trial lease (s).
ADMIT_SCRIPT = """
local now = tonumber(ARGV[1])
local b = redis.call('hmget', KEYS[3], 'state', 'fail_counter', 'opened_at', 'trial_until')
local state = b[1] or 'closed'
local verdict, wait, trial = 'admitted', 0, 0
local hold = tonumber(redis.call('get', KEYS[2]) or '0') or 0
if hold > now then
  verdict, wait = 'held', hold - now
else
  local limit, window = tonumber(ARGV[2]), tonumber(ARGV[3])
  local oldest = redis.call('lindex', KEYS[1], limit - 1)
  if oldest and tonumber(oldest) >= now - window then
    verdict, wait = 'limited', tonumber(oldest) + window - now
  else
    redis.call('lpush', KEYS[1], ARGV[1])
    redis.call('ltrim', KEYS[1], 0, limit - 1)
    redis.call('expire', KEYS[1], window)
    if state == 'open' and now >= (tonumber(b[3] or '0') or 0) + tonumber(ARGV[4]) then
      state = 'half-open'
      redis.call('hset', KEYS[3], 'state', state)
    end
    if state == 'half-open' and (tonumber(b[4] or '0') or 0) <= now then
      trial = 1
      redis.call('hset', KEYS[3], 'trial_until', tostring(now + tonumber(ARGV[5])))
    end
  end
end
return {verdict, tostring(wait), state, b[2] or '0', b[3] or '', trial}
"""

REDIS_TIMEOUT = 0.25
"""Seconds a Redis command may take before the backend counts as down (loopback or a LAN)."""
RECOVERY_DELAYS = (1.0, 1.5, 2.0)
"""Seconds between pings while Redis is down; the last one repeats."""
IDLE_PING = 2.0
"""Seconds without any Redis answer after which an up Redis is pinged."""


@dataclass(frozen=True)
class Admission:
    """The store's answer to one call: admitted or not, and the breaker as the cluster sees it."""

    verdict: Verdict
    wait: float
    """Seconds until the provider's hold ends (``held``) or a token is free (``limited``)."""
    breaker: BreakerSnapshot


@dataclass(frozen=True)
class StateHealth:
    """Where rate limits and breakers live, and whether that works right now."""

    backend: Literal["memory", "redis"]
    status: Status
    since: float
    """Epoch seconds of the last change of ``status``."""
    detail: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "status": self.status,
            "since": datetime.fromtimestamp(self.since, UTC).isoformat(timespec="seconds"),
            "detail": self.detail,
        }


MEMORY_HEALTH = StateHealth("memory", "up", time.time(), "rate limits and breakers are per replica")


def limits_uri(url: str) -> str:
    """The ``limits`` async storage URI for a ``redis://``, ``rediss://`` or ``unix://`` URL."""
    if url.startswith("unix://"):
        return "async+redis+unix://" + url.removeprefix("unix://")
    return "async+" + url


class SharedState:
    """The Redis side of the pipeline's rate limits, upstream holds and breakers."""

    def __init__(self, url: str, *, prefix: str = "gw", timeout: float = REDIS_TIMEOUT) -> None:
        self.prefix = prefix
        self.redis: aioredis.Redis = aioredis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 1),  # one immediate retry replaces a connection Redis closed
        )
        shared_pool: dict[str, Any] = {"connection_pool": self.redis.connection_pool}
        self.storage = RedisStorage(limits_uri(url), implementation="redispy", key_prefix=f"{prefix}:limits",
                                    **shared_pool)
        self.limiter = RateLimiter(self.storage)
        """A ``limits`` limiter over the shared windows (``remaining``, ``clear``)."""
        self._admit = self.redis.register_script(ADMIT_SCRIPT)
        self._mirrors: dict[str, MirroredStorage] = {}
        self._holds: dict[str, float] = {}
        self._flush_lock = asyncio.Lock()
        self._health = StateHealth("redis", "up", time.time())
        self._last_answer = time.monotonic()
        self._watcher: asyncio.Task[None] | None = None
        self.listeners: list[Callable[[StateHealth], None]] = []
        """Called with the new health whenever the backend goes down or comes back (the
        ``state_backend.transition`` log event is one)."""

    # -- what the pipeline uses ------------------------------------------------------------------

    def breaker_storage(self, key: str) -> MirroredStorage:
        """The pybreaker storage of breaker ``key`` (``provider.operation``), mirrored to Redis."""
        return self._mirrors.setdefault(key, MirroredStorage())

    async def admit(
        self, provider: str, breaker: str, limit: int, window: float, reset_timeout: float, trial_lease: float,
    ) -> Admission | None:
        """Hold check, rate-limit hit and breaker read in one round trip; ``None`` when Redis is
        down (the caller then uses its local limiter and breaker)."""
        if self._health.status != "up":
            return None
        mirror = self.breaker_storage(breaker)
        generation = mirror.changed
        item = RateLimiter.item(limit, window)
        now = time.time()
        try:
            raw = await self._admit(
                keys=[self._limit_key(item.key_for(provider)), self._hold_key(provider), self._breaker_key(breaker)],
                args=[repr(now), limit, item.get_expiry(), reset_timeout, trial_lease],
            )
        except (RedisError, OSError) as error:
            self._went_down(error)
            return None
        self._last_answer = time.monotonic()
        verdict, wait, state, counter, opened_at, trial = (text(v) for v in raw)
        snapshot = BreakerSnapshot(state=state, fail_counter=int(counter),
                                   opened_at=float(opened_at) if opened_at else None,
                                   trial=trial == "1", generation=generation)
        return Admission(verdict, float(wait), snapshot)  # type: ignore[arg-type]

    def hold(self, provider: str, seconds: float) -> None:
        """Hold calls to ``provider`` in every replica for ``seconds`` (its ``Retry-After``);
        written with the next :meth:`flush`."""
        until = time.time() + seconds
        self._holds[provider] = max(until, self._holds.get(provider, 0.0))

    async def flush(self) -> None:
        """Write what this replica changed since the last flush; returns at once when nothing did."""
        if not self._holds and not any(m.dirty for m in self._mirrors.values()):
            return
        async with self._flush_lock:
            batch = [(key, changes) for key, mirror in self._mirrors.items()
                     if (changes := mirror.take_changes()) is not None]
            holds, self._holds = self._holds, {}
            try:
                if self._health.status == "up" and (batch or holds):
                    await self._write(batch, holds)
                    self._last_answer = time.monotonic()
            except (RedisError, OSError) as error:
                self._went_down(error)
            finally:  # written, or dropped while Redis is down: local state is what counts then
                for key, changes in batch:
                    self._mirrors[key].confirm(changes.generation)

    def health(self) -> StateHealth:
        return self._health

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Check Redis once, so that health is right before the first call, and start watching it."""
        try:
            await self.redis.ping()
            self._last_answer = time.monotonic()
        except (RedisError, OSError) as error:
            self._went_down(error)
        self._watch()

    async def aclose(self) -> None:
        await cancel(self._watcher)
        self._watcher = None
        with contextlib.suppress(RedisError, OSError):
            await self.flush()
        await self.redis.aclose()

    # -- internals -------------------------------------------------------------------------------

    async def _write(self, batch: Sequence[tuple[str, BreakerChanges]], holds: dict[str, float]) -> None:
        now = time.time()
        pipe: RedisPipeline
        async with self.redis.pipeline(transaction=True) as pipe:
            for key, changes in batch:
                _write_breaker(pipe, self._breaker_key(key), changes)
            for provider, until in holds.items():
                if until > now:
                    pipe.set(self._hold_key(provider), repr(until), px=max(1, math.ceil((until - now) * 1000)))
            await pipe.execute()

    def _limit_key(self, key: str) -> str:
        return f"{self.prefix}:limits:{key}"

    def _hold_key(self, provider: str) -> str:
        return f"{self.prefix}:hold:{provider}"

    def _breaker_key(self, key: str) -> str:
        return f"{self.prefix}:breaker:{key}"

    def _went_down(self, error: BaseException) -> None:
        if self._health.status == "up":
            # The error's class only: its text may name the server, never worth leaking.
            self._set_health("down", f"Redis unreachable ({type(error).__name__}); "
                                         "serving with this replica's local rate limits and breakers")
        self._watch()

    def _watch(self) -> None:
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.get_running_loop().create_task(self._watching(), name="shared-state-watch")

    async def _watching(self) -> None:
        """Ping an idle Redis every :data:`IDLE_PING` s, a lost one every 1-2 s until it answers."""
        attempt = 0
        while True:
            if self._health.status == "up":
                attempt = 0
                await asyncio.sleep(IDLE_PING)
                if time.monotonic() - self._last_answer < IDLE_PING:
                    continue
            else:
                await asyncio.sleep(RECOVERY_DELAYS[min(attempt, len(RECOVERY_DELAYS) - 1)])
                attempt += 1
            try:
                await self.redis.ping()
            except (RedisError, OSError) as error:
                self._went_down(error)
                continue
            self._last_answer = time.monotonic()
            if self._health.status == "down":
                self._set_health("up", None)

    def _set_health(self, status: Status, detail: str | None) -> None:
        self._health = StateHealth("redis", status, time.time(), detail)
        for listener in self.listeners:
            try:
                listener(self._health)
            except Exception:  # a listener must not stop the failover
                log.exception("shared state health listener failed")


def _write_breaker(pipe: RedisPipeline, key: str, changes: BreakerChanges) -> None:
    fields: dict[str, str] = {}
    if changes.reset:
        fields["fail_counter"] = str(changes.failures)
    elif changes.failures:
        pipe.hincrby(key, "fail_counter", changes.failures)
    if changes.state is not None:
        fields["state"] = changes.state
    if changes.opened_at is not None:
        fields["opened_at"] = repr(changes.opened_at)
    if changes.trial_over:
        fields["trial_until"] = "0"
    if fields:
        pipe.hset(key, mapping=fields)  # type: ignore[arg-type]


def text(value: Any) -> str:
    """A Redis reply as text."""
    return value.decode() if isinstance(value, bytes) else str(value)
