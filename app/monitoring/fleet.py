"""The fleet's in-app view: replicas share their recorded buckets through Redis (``STATE_REDIS_URL``).

Recording is the plain :class:`~app.monitoring.recorder.Recorder`'s, in this process's rings: a
request never waits on Redis and costs nothing more. A background task, every
:data:`FLUSH_INTERVAL`, sends what changed in those rings since its last flush (bucket deltas,
found by comparing each recent bucket with a copy of what was queued) and reads back the slots any
replica changed since its last read, all in one Lua script: one round trip per interval. Each
batch of deltas has a sequence number and stays queued until Redis answers, so a batch whose
answer was lost is sent again and applied once. In Redis each time slot is a hash of counters
(:mod:`app.monitoring.fleet_wire`), expiring with the recorder's horizon; a version number says
which slots changed. The usage recorder's buckets and running totals per period ride along
(:class:`FleetUsage`). Each replica also reports itself (``gw:fleet:replicas``): when it last
did, its calls in flight against its limits (``ProviderSaturated`` is per replica, as Prometheus
sees it per target), its last errors and its own request counts over the alert window.

Reads (``/health/*``, ``/status``, the evaluator) use the merged slots, so every replica shows the
fleet's numbers and evaluates the same alerts. While Redis is down (or the last flush is older than
:data:`STALE_AFTER`) reads use this replica's own rings and :attr:`FleetRecorder.view` says
``local``; deltas not sent stay in the rings and are sent when Redis answers again. A Redis that
comes back empty (restarted without persistence) has a new epoch: every replica then sends its
whole ring again, so the fleet's history is rebuilt from what the replicas recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import socket
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from ..background import cancel
from ..calls import LOOP_LAG_BUCKETS, ServiceKey
from ..resilience.shared_state import StateHealth, text
from .buckets import Bucket, cumulative, slot_of, slots_between
from .fleet_wire import SYNC_SCRIPT, bucket_updates, copy, decode, decode_period, spend_updates
from .recorder import STATE_VALUES, LastError, Recorder
from .stats import Key
from .usage import Spend, UsageKey, UsageRecorder, day_period, month_period

log = logging.getLogger("app.monitoring.fleet")

View = Literal["fleet", "local"]
FLUSH_INTERVAL = 1.0
"""Seconds between flushes: one Redis round trip per replica per interval."""
STALE_AFTER = 3 * FLUSH_INTERVAL
"""Seconds after the last good flush when the merged view no longer counts as the fleet's."""
REPLICA_AGE_OUT = 10.0
"""Seconds without a report after which a replica is no longer listed nor read for saturation."""


@dataclass(frozen=True)
class ReplicaReport:
    """One replica as the fleet knows it."""

    replica: str
    """``<host name>-<process id>``: unique per process, also with ``serve --workers``."""
    instance: str
    """Its ``instance`` label on ``GatewayEventLoopLagHigh``."""
    last_report: datetime
    age_seconds: float
    requests: dict[str, int]
    """Its own calls that reached a provider over the alert window, per ``provider.operation``."""


@dataclass(frozen=True)
class FleetStatus:
    """Whose numbers ``/health/*`` shows: the fleet's (merged through Redis) or this replica's."""

    view: View
    replica: str
    reason: str | None
    """Why the view is local, when it is."""
    replicas: list[ReplicaReport]
    """This replica first, then (in the fleet view) the others that reported within the age-out time."""


def replica_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class FleetUsage:
    """The fleet's usage (a :class:`~app.monitoring.usage.UsageSource`): the merged usage buckets of
    the slots read, and the current periods' running totals as the last flush read them."""

    def __init__(self, bucket: float) -> None:
        self.bucket = bucket
        self.slots: dict[int, dict[UsageKey, Spend]] = {}
        self.periods: dict[str, dict[str, Spend]] = {}

    def window(self, now: float, window: float) -> dict[UsageKey, Spend]:
        totals: dict[UsageKey, Spend] = {}
        for slot in slots_between(now - window, now, self.bucket):
            for key, spend in self.slots.get(slot, {}).items():
                totals.setdefault(key, Spend()).add(spend)
        return totals

    def spent(self, period: str) -> dict[str, Spend]:
        return self.periods.get(period, {})


class FleetRecorder(Recorder):
    """A recorder whose reads are the fleet's once :meth:`connect` gave it Redis and :meth:`start` ran."""

    def __init__(self, *args: Any, window: float = 300.0, flush_interval: float = FLUSH_INTERVAL,
                 usage: UsageRecorder | None = None, **kwargs: Any) -> None:
        """``usage``: the usage recorder whose buckets (of the same size) and totals ride along."""
        super().__init__(*args, **kwargs)
        self.usage = usage
        self.fleet_usage = FleetUsage(self.bucket)
        self._usage_sent: dict[tuple[UsageKey, int], Spend] = {}
        self._periods_sent: dict[tuple[str, str], Spend] = {}
        self.replica = replica_id()
        self.window = window
        self.flush_interval = flush_interval
        self._script: AsyncScript | None = None
        self._health: Callable[[], StateHealth] | None = None
        self._prefix = "gw:fleet"
        self._epoch = ""
        self._version = 0
        self._sent: dict[tuple[Key, int], Bucket] = {}
        self._lag_sent: dict[int, list[int]] = {}
        self._unsent_from = -math.inf
        self._seq = 0
        self._pending: list[tuple[int, dict[int | str, list[Any]]]] = []
        """Batches of deltas sent or not, until Redis confirms them."""
        self._slots_cache: dict[int, dict[Key, Bucket]] = {}
        self._lag_cache: dict[int, dict[str, list[int]]] = {}
        self._reports: dict[str, dict[str, Any]] = {}
        self._synced_at: float | None = None
        self._task: asyncio.Task[None] | None = None

    def connect(self, client: aioredis.Redis, health: Callable[[], StateHealth], prefix: str = "gw") -> None:
        """Share through ``client`` (the shared state's connection) while ``health()`` says up."""
        self._script = client.register_script(SYNC_SCRIPT)
        self._health = health
        self._prefix = f"{prefix}:fleet"

    # -- whose view ------------------------------------------------------------------------------

    @property
    def view(self) -> View:
        return "local" if self._local_reason() else "fleet"

    def _local_reason(self) -> str | None:
        if self._script is None or self._health is None:
            return "no shared state store: this replica's numbers only"
        if self._health().status != "up":
            return "Redis is down: this replica's numbers only until it answers again"
        if self._synced_at is None or self.clock() - self._synced_at > STALE_AFTER:
            return "not merged with the fleet yet" if self._synced_at is None else "the fleet view is stale"
        return None

    def status(self, now: float) -> FleetStatus:
        reason = self._local_reason()
        mine = {**self._report(now), "seen": now}
        # While local, what this replica last heard of the others is stale: it lists itself only.
        others = [] if reason else [r for r in self._live_reports(now) if r["replica"] != self.replica]
        found = [mine, *others]
        replicas = [ReplicaReport(r["replica"], r["instance"], datetime.fromtimestamp(r["seen"], UTC),
                                  round(max(0.0, now - r["seen"]), 3), dict(r["requests"])) for r in found]
        return FleetStatus("local" if reason else "fleet", self.replica, reason, replicas)

    # -- reads: the fleet's when merged, else this replica's --------------------------------------

    def keys(self) -> list[Key]:
        if self.view == "local":
            return super().keys()
        merged = {key for buckets in self._slots_cache.values() for key in buckets}
        return sorted(merged | set(self._series))

    def _buckets(self, key: Key, slots: range) -> Iterator[Bucket]:
        if self.view == "local":
            yield from super()._buckets(key, slots)
            return
        for slot in slots:
            found = self._slots_cache.get(slot, {}).get(key)
            if found is not None:
                yield found

    def loop_lag(self, now: float, window: float) -> dict[str, tuple[tuple[float, float], ...]]:
        """Per replica (``instance``), as Prometheus keeps it per target."""
        if self.view == "local":
            return super().loop_lag(now, window)
        counts: dict[str, list[int]] = {}
        for slot in self._slots(now - window, now):
            for instance, histogram in self._lag_cache.get(slot, {}).items():
                total = counts.setdefault(instance, [0] * (len(LOOP_LAG_BUCKETS) + 1))
                for i, count in enumerate(histogram):
                    total[i] += count
        return {instance: cumulative(LOOP_LAG_BUCKETS, c) for instance, c in counts.items() if any(c)}

    def saturation(self, now: float) -> dict[str, float]:
        """Per provider, the highest share of the limit in flight in any replica now."""
        shares = super().saturation(now)
        if self.view == "local":
            return shares
        for report in self._live_reports(now):
            if report["replica"] == self.replica:
                continue
            for provider, (in_flight, limit) in report["saturation"].items():
                share = in_flight / limit if limit > 0 else (math.inf if in_flight > 0 else None)
                if share is not None and share > shares.get(provider, -math.inf):
                    shares[provider] = share
        return shares

    def breaker_state(self, key: Key) -> str:
        """The most open state any replica's breaker reported (Prometheus: some replica's
        ``provider_circuit_state`` is 2); with shared breakers a replica's own copy may lag."""
        state = super().breaker_state(key)
        if self.view == "local":
            return state
        name = str(ServiceKey(*key))
        for report in self._live_reports(self.clock()):
            theirs = report.get("breakers", {}).get(name, "closed")
            if STATE_VALUES.get(theirs, 0) > STATE_VALUES.get(state, 0):
                state = theirs
        return state

    def last_error(self, key: Key) -> LastError | None:
        found = super().last_error(key)
        if self.view == "local":
            return found
        name = str(ServiceKey(*key))
        for report in self._live_reports(self.clock()):
            if (theirs := report["last_errors"].get(name)) and (found is None or theirs[0] > found.timestamp):
                found = LastError(float(theirs[0]), str(theirs[1]))
        return found

    def _live_reports(self, now: float) -> list[dict[str, Any]]:
        return [r for r in self._reports.values() if now - r["seen"] <= REPLICA_AGE_OUT]

    # -- the flusher -------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._script is not None and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="fleet-flush")

    async def stop(self) -> None:
        """Stop flushing, after a last flush so that the fleet keeps this replica's final counts."""
        task, self._task = self._task, None
        await cancel(task)
        if task is not None:
            with contextlib.suppress(RedisError, OSError):
                await self.sync()

    async def _run(self) -> None:
        while True:
            try:
                await self.sync()
            except (RedisError, OSError) as error:
                log.debug("fleet flush failed, kept for the next one: %s", type(error).__name__)
            except Exception:  # a failing flush must never stop the loop
                log.exception("fleet flush failed")
            await asyncio.sleep(self.flush_interval)

    async def sync(self) -> bool:
        """Send the deltas and read the fleet's changes (one round trip); False when Redis is down
        (the deltas wait in the rings). Raises what Redis raised; the batches it may or may not
        have applied are sent again and applied once (each has a sequence number)."""
        if self._script is None or self._health is None or self._health().status != "up":
            return False
        for _ in range(2):  # a second time only right after a new epoch: everything is resent then
            now = self.clock()
            current = slot_of(now, self.bucket)
            oldest = current - self._size + 1
            self._queue(oldest, current)
            argv: list[Any] = [self._prefix, self._epoch, uuid.uuid4().hex, math.ceil(self.horizon + self.bucket),
                               self._version, oldest, self.replica, json.dumps(self._report(now)), repr(now),
                               repr(now - self.horizon), " ".join(self._periods_read(now)), len(self._pending)]
            for seq, groups in self._pending:
                argv += [seq, len(groups)]
                for slot, updates in groups.items():
                    argv += [slot, len(updates) // 3, *updates]
            raw = await self._script(args=argv)
            if text(raw[0]) == "epoch":
                self._new_epoch(text(raw[1]))
                continue
            self._pending = []
            self._merge(raw[3], int(text(raw[2])), oldest)
            self._reports = {r["replica"]: r for r in (json.loads(text(b)) for b in raw[4])}
            self.fleet_usage.periods = {text(raw[5][j]): decode_period([text(f) for f in raw[5][j + 1]])
                                        for j in range(0, len(raw[5]), 2)}
            self._synced_at = now
            return True
        return False

    def _queue(self, oldest: int, current: int) -> None:
        """Queue what changed since the last batch as a new batch."""
        groups, sent, lag_sent = self._deltas(max(oldest, self._unsent_from), current)
        if groups:
            self._seq += 1
            self._pending.append((self._seq, groups))
        # Slots that have left the ring have left every replica's horizon too: a batch unsent that
        # long (a script that keeps failing while Redis answers) keeps only its slots still in it.
        self._pending = [(seq, kept) for seq, batch in self._pending
                         if (kept := {slot: u for slot, u in batch.items()
                                      if isinstance(slot, str) or slot >= oldest})]
        self._sent.update(sent)
        self._lag_sent.update(lag_sent)
        self._unsent_from = current  # earlier slots are complete; the current one may grow
        self._sent = {k: b for k, b in self._sent.items() if k[1] >= current}
        self._usage_sent = {k: s for k, s in self._usage_sent.items() if k[1] >= current}
        self._lag_sent = {slot: h for slot, h in self._lag_sent.items() if slot >= current}

    def _new_epoch(self, epoch: str) -> None:
        """An empty (new) Redis: resend the whole ring and read everything again."""
        self._epoch, self._version = epoch, 0
        self._sent, self._lag_sent, self._unsent_from, self._pending = {}, {}, -math.inf, []
        self._usage_sent, self._periods_sent = {}, {}
        self._slots_cache, self._lag_cache, self.fleet_usage.slots = {}, {}, {}
        self.forget_sealed()

    def _deltas(self, first: float, current: int) -> tuple[dict[int | str, list[Any]],
                                                          dict[tuple[Key, int], Bucket], dict[int, list[int]]]:
        """Per slot (and period), the updates since the last flush; and the copies to remember once sent."""
        groups: dict[int | str, list[Any]] = {}
        sent: dict[tuple[Key, int], Bucket] = {}
        slots = range(int(max(first, current - self._size + 1)), current + 1)
        for key, series in self._series.items():
            name = str(ServiceKey(*key))
            for slot in slots:
                b = series.ring[slot % self._size]
                if b is None or b.slot != slot:
                    continue
                updates = bucket_updates(name, b, self._sent.get((key, slot)))
                if updates:
                    groups.setdefault(slot, []).extend(updates)
                    sent[(key, slot)] = copy(b)
        lag_sent: dict[int, list[int]] = {}
        for slot in slots:
            lag = self._lag[slot % self._size]
            if lag is None or lag.slot != slot:
                continue
            before = self._lag_sent.get(slot, [0] * len(lag.histogram))
            updates = [x for i, (now, was) in enumerate(zip(lag.histogram, before, strict=True)) if now != was
                       for x in ("i", f"lag|{self.instance}|{i}", now - was)]
            if updates:
                groups.setdefault(slot, []).extend(updates)
                lag_sent[slot] = list(lag.histogram)
        self._usage_deltas(slots, groups)
        return groups, sent, lag_sent

    def _usage_deltas(self, slots: range, groups: dict[int | str, list[Any]]) -> None:
        """The usage buckets' and running totals' updates, remembered as sent at once (a batch
        stays queued until Redis confirms it)."""
        if self.usage is None:
            return
        for (provider, operation, client), slot, spend in self.usage.held(slots):
            name = f"u|{ServiceKey(provider, operation)}|{client}"
            updates = spend_updates(name, spend, self._usage_sent.get(((provider, operation, client), slot)))
            if updates:
                groups.setdefault(slot, []).extend(updates)
                self._usage_sent[((provider, operation, client), slot)] = spend.copy()
        for period, providers in self.usage.periods.items():
            for provider, spend in providers.items():
                updates = spend_updates(provider, spend, self._periods_sent.get((period, provider)))
                if updates:
                    groups.setdefault(period, []).extend(updates)
                    self._periods_sent[(period, provider)] = spend.copy()
        self._periods_sent = {k: s for k, s in self._periods_sent.items() if k[0] in self.usage.periods}

    def _periods_read(self, now: float) -> list[str]:
        """The periods whose fleet totals each flush reads back."""
        return [] if self.usage is None else [day_period(now), month_period(now)]

    def _merge(self, changed: list[Any], version: int, oldest: int) -> None:
        for i in range(0, len(changed), 2):
            slot, fields = int(text(changed[i])), changed[i + 1]
            buckets: dict[Key, Bucket] = {}
            lag: dict[str, list[int]] = {}
            usage: dict[UsageKey, Spend] = {}
            for j in range(0, len(fields), 2):
                decode(slot, text(fields[j]), text(fields[j + 1]), buckets, lag, usage)
            self.restate(slot, self._slots_cache.get(slot, {}), buckets)
            self._slots_cache[slot], self._lag_cache[slot], self.fleet_usage.slots[slot] = buckets, lag, usage
        self._version = version
        for cache in (self._slots_cache, self._lag_cache, self.fleet_usage.slots):
            for slot in [s for s in cache if s < oldest]:
                del cache[slot]

    def _report(self, now: float) -> dict[str, Any]:
        """What this replica says of itself with each flush."""
        requests = own_requests(self, self.window, now)
        saturation = self.saturation_reader() if self.saturation_reader is not None else {}
        errors = {str(ServiceKey(*key)): list(s.last_error) for key, s in self._series.items() if s.last_error}
        breakers = {str(ServiceKey(*key)): s.state for key, s in self._series.items() if s.state != "closed"}
        return {"replica": self.replica, "instance": self.instance, "seen": now, "requests": requests,
                "saturation": {p: list(v) for p, v in saturation.items()}, "last_errors": errors,
                "breakers": breakers}


def own_requests(recorder: Recorder, window: float, now: float) -> dict[str, int]:
    """The replica's own calls that reached a provider over ``window``, per ``provider.operation``."""
    slots = recorder._slots(now - window, now)
    return {str(ServiceKey(*key)): sum(b.requests for b in Recorder._buckets(recorder, key, slots))
            for key in Recorder.keys(recorder)}


def local_status(recorder: Recorder, window: float, now: float, reason: str) -> FleetStatus:
    """The status of a replica that shares nothing."""
    me = ReplicaReport(replica_id(), recorder.instance, datetime.fromtimestamp(now, UTC), 0.0,
                       own_requests(recorder, window, now))
    return FleetStatus("local", me.replica, reason, [me])
