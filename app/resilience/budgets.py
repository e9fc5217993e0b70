"""Client budgets (``CLIENT_BUDGETS_FILE``): what each client has spent this UTC day and month, kept
in the shared state store (Redis) when there is one, so that every replica sees the fleet's spend,
and the refusal of a client's calls once an enforced budget is spent.

An enforced client's calls are admitted at most ``max_in_flight`` at a time per replica (1 by
default): each admission reads the fleet's spend (one Redis round trip) after the previous call's
cost was written (one more, before its answer leaves), so the fleet overspends a budget by at most
``max_in_flight`` calls per replica, whose cost is known only when they end. A call refused
is answered 429 ``budget_exceeded`` with ``Retry-After`` until the period ends. While Redis is
away, a replica judges by its own spend (written to Redis again only from then on).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from redis.exceptions import RedisError

from ..calls import ErrorType, GatewayError
from ..config import ClientBudget
from .shared_state import SharedState

DAY_TTL = 2 * 86400
MONTH_TTL = 32 * 86400


@dataclass(frozen=True)
class Periods:
    """The UTC day and month a moment falls in, and the seconds until each ends."""

    day: str
    month: str
    day_left: float
    month_left: float

    @classmethod
    def at(cls, epoch: float) -> Periods:
        now = datetime.fromtimestamp(epoch, UTC)
        tomorrow = datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(days=1)
        next_month = datetime(now.year + now.month // 12, now.month % 12 + 1, 1, tzinfo=UTC)
        return cls(now.strftime("%Y-%m-%d"), now.strftime("%Y-%m"), (tomorrow - now).total_seconds(),
                   (next_month - now).total_seconds())


class BudgetSlot:
    """One admitted call of an enforced client: its place among the client's calls in flight."""

    def __init__(self, gate: asyncio.Semaphore) -> None:
        self._gate: asyncio.Semaphore | None = gate

    def release(self) -> None:
        if self._gate is not None:
            self._gate.release()
            self._gate = None


class Budgets:
    """The clients' spend against their budgets; refuses an enforced client over budget."""

    def __init__(self, budgets: Mapping[str, ClientBudget], shared: SharedState | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.budgets = budgets
        self.shared = shared
        self.clock = clock
        self._gates: dict[str, asyncio.Semaphore] = {}
        self._local: dict[str, float] = {}
        """This replica's own spend per ``client|period`` (the judge while Redis is away)."""

    async def admit(self, client: str) -> BudgetSlot | None:
        """Wait for one of the client's in-flight places, then refuse it when a budget is spent."""
        budget = self.budgets.get(client)
        if budget is None or not budget.enforce:
            return None
        gate = self._gates.get(client)
        if gate is None:
            gate = self._gates[client] = asyncio.Semaphore(budget.max_in_flight)
        await gate.acquire()
        slot = BudgetSlot(gate)
        try:
            periods = Periods.at(self.clock())
            day, month = await self.spent(client, periods)
            for spent, limit, name, left in ((day, budget.daily_usd, "daily", periods.day_left),
                                             (month, budget.monthly_usd, "monthly", periods.month_left)):
                if limit is not None and spent >= limit:
                    raise GatewayError(
                        ErrorType.BUDGET_EXCEEDED,
                        f"client {client!r} has spent {spent:.6f} USD of its {name} budget of {limit:g} USD",
                        retry_after=float(max(1, round(left))))
        except BaseException:
            slot.release()
            raise
        return slot

    async def spent(self, client: str, periods: Periods) -> tuple[float, float]:
        """USD the client spent this day and month: the fleet's while Redis answers, else this replica's."""
        keys = (self._key(client, "d", periods.day), self._key(client, "m", periods.month))
        shared = self.shared
        if shared is not None and shared.health().status == "up":
            try:
                values = await shared.redis.mget(keys)
                return float(values[0] or 0), float(values[1] or 0)
            except (RedisError, OSError):
                pass  # the shared store's watcher notices; judge locally meanwhile
        return self._local.get(keys[0], 0.0), self._local.get(keys[1], 0.0)

    async def settle(self, client: str, cost: float | None, slot: BudgetSlot | None) -> None:
        """Add a call's cost to the client's spend (the fleet's too), then free its place."""
        try:
            if cost and client in self.budgets:
                await self._add(client, cost)
        finally:
            if slot is not None:
                slot.release()

    async def _add(self, client: str, cost: float) -> None:
        periods = Periods.at(self.clock())
        keys = ((self._key(client, "d", periods.day), DAY_TTL), (self._key(client, "m", periods.month), MONTH_TTL))
        for key, _ in keys:
            self._local[key] = self._local.get(key, 0.0) + cost
        shared = self.shared
        if shared is None or shared.health().status != "up":
            return
        try:
            async with shared.redis.pipeline(transaction=False) as pipe:
                for key, ttl in keys:
                    pipe.incrbyfloat(key, cost)
                    pipe.expire(key, ttl)
                await pipe.execute()
        except (RedisError, OSError):
            pass  # counted locally; the shared store's watcher notices it is away

    def _key(self, client: str, kind: str, period: str) -> str:
        prefix = self.shared.prefix if self.shared is not None else "gw"
        return f"{prefix}:spend:{client}:{kind}{period}"
