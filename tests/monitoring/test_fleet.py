"""The fleet recorder on a real Redis, step by step on a hand-moved clock: what two replicas merge,
exactly once; the local view while Redis is away and the merge when it returns; an empty Redis
rebuilt from the replicas' rings; per-replica saturation, lag and ageing out."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeout

from app.calls import CallContext, CallEvent, CallSpec
from app.monitoring import Monitoring
from app.monitoring.fleet import REPLICA_AGE_OUT, STALE_AFTER, FleetRecorder
from app.resilience.shared_state import StateHealth
from tests.hardening.servers import RedisServer, redis_server
from tests.support import T0, Clock

from .helpers import record, settings

pytestmark = pytest.mark.stack

CHAT = [("openai", "chat")]


class Store:
    """The shared state's health as the test sets it."""

    def __init__(self) -> None:
        self.status: Any = "up"

    def __call__(self) -> StateHealth:
        return StateHealth("redis", self.status, T0)


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


class Replicas:
    def __init__(self, server: RedisServer) -> None:
        self.server = server
        self.clock = Clock(T0 + 5)
        self.store = Store()
        self.clients: list[aioredis.Redis] = []
        self.replicas = [self.add(n) for n in range(2)]

    def add(self, n: int) -> Monitoring:
        m = Monitoring(settings({"STATE_REDIS_URL": self.server.url}), self.clock, instance=f"host-{n}")
        client = aioredis.Redis.from_url(self.server.url)
        self.clients.append(client)
        m.join_fleet(client, self.store, "gw")
        assert isinstance(m.recorder, FleetRecorder) and isinstance(m.history, FleetRecorder)
        m.recorder.replica = m.history.replica = f"replica-{n}"  # one process each, as in a fleet
        return m

    @staticmethod
    def fleet(m: Monitoring) -> FleetRecorder:
        assert isinstance(m.recorder, FleetRecorder)
        return m.recorder

    async def sync(self, *which: Monitoring) -> None:
        for m in which or self.replicas:
            assert await self.fleet(m).sync()

    def requests(self, m: Monitoring) -> int:
        return m.recorder.aggregate(CHAT, self.clock() - 3600, self.clock()).requests


@pytest.fixture
async def fleet(redis: RedisServer) -> AsyncIterator[Replicas]:
    with redis.client() as client:
        client.flushall()
    replicas = Replicas(redis)
    yield replicas
    for client in replicas.clients:
        await client.aclose()


async def test_replicas_merge_counts_latency_extremes_errors_rejections_and_lag(fleet: Replicas) -> None:
    a, b = fleet.replicas
    record(a, "openai.chat", ok=3, failed=1, latency_ms=100, error_type="timeout")
    record(b, "openai.chat", ok=2, failed=2, latency_ms=7000)
    record(b, "sarvam.tts", ok=1)
    a.recorder.record_loop_lag(0.001)
    b.recorder.record_loop_lag(0.2)
    assert a.recorder.view == "local"  # not merged yet
    await fleet.sync(a, b, a)
    for m in (a, b):
        assert m.recorder.view == "fleet"
        agg = m.recorder.aggregate(CHAT, fleet.clock() - 60, fleet.clock())
        assert (agg.requests, agg.successes) == (8, 5)
        assert (agg.latency_min, agg.latency_max) == (0.1, 7.0)
        assert dict(agg.errors) == {"timeout": 1, "upstream_5xx": 2}
        assert sum(agg.histogram) == 8
        assert m.recorder.keys() == [("openai", "chat"), ("sarvam", "tts")]
        assert set(m.recorder.loop_lag(fleet.clock(), 60)) == {"host-0", "host-1"}
    # Later calls add only what changed since: nothing twice.
    record(a, "openai.chat", ok=1)
    await fleet.sync(a, b)
    assert fleet.requests(b) == 9


async def test_a_batch_whose_answer_was_lost_is_applied_once(fleet: Replicas) -> None:
    a, b = fleet.replicas
    await fleet.sync(a)  # past the first flush's handshake (the epoch)
    record(a, "openai.chat", ok=5)
    recorder = fleet.fleet(a)
    script = recorder._script
    assert script is not None

    async def applied_then_lost(**kwargs: Any) -> Any:
        await script(**kwargs)
        raise RedisTimeout("the answer did not arrive")

    recorder._script = applied_then_lost  # type: ignore[assignment]
    with pytest.raises(RedisTimeout):
        await recorder.sync()
    recorder._script = script
    record(a, "openai.chat", ok=1)
    await fleet.sync(a, b)
    assert fleet.requests(b) == 6 and fleet.requests(a) == 6


async def test_batches_a_failing_script_never_takes_are_kept_only_while_their_slots_are_in_the_ring(
        fleet: Replicas) -> None:
    a, b = fleet.replicas
    await fleet.sync(a)
    recorder = fleet.fleet(a)
    script = recorder._script

    async def failing(**kwargs: Any) -> Any:
        raise ResponseError("the script failed")

    recorder._script = failing  # type: ignore[assignment]
    ring = round(recorder.horizon / recorder.bucket)
    for _ in range(ring + 40):  # longer than the horizon, one call per bucket
        record(a, "openai.chat", ok=1)
        with pytest.raises(ResponseError):
            await recorder.sync()
        fleet.clock.advance(recorder.bucket)
    assert len(recorder._pending) <= ring + 1
    recorder._script = script
    await fleet.sync(a, b)
    # What is still within the horizon reached the fleet; nothing older was kept for it.
    assert fleet.requests(b) == fleet.requests(a) == ring


async def test_while_redis_is_away_the_view_is_local_and_nothing_is_lost(fleet: Replicas) -> None:
    a, b = fleet.replicas
    record(a, "openai.chat", ok=2)
    record(b, "openai.chat", ok=3)
    await fleet.sync(a, b, a)
    assert fleet.requests(a) == 5
    fleet.store.status = "down"
    assert not await fleet.fleet(a).sync()
    status = a.fleet_status()
    assert status.view == "local" and status.reason is not None and "Redis is down" in status.reason
    assert [r.replica for r in status.replicas] == ["replica-0"]
    assert fleet.requests(a) == 2  # its own calls only
    fleet.clock.advance(30)  # across buckets while away
    record(a, "openai.chat", ok=4, failed=1)
    fleet.store.status = "up"
    await fleet.sync(a, b)
    assert fleet.requests(b) == 10 and b.recorder.view == "fleet"


async def test_an_empty_redis_is_rebuilt_from_the_replicas_rings(fleet: Replicas) -> None:
    a, b = fleet.replicas
    record(a, "openai.chat", ok=2)
    fleet.clock.advance(20)
    record(b, "openai.chat", ok=3)
    await fleet.sync(a, b, a)
    with fleet.server.client() as client:
        client.flushall()  # as a Redis restarted without persistence
    record(a, "openai.chat", ok=1)
    await fleet.sync(a, b, a)
    assert fleet.requests(a) == 6 and fleet.requests(b) == 6


def translate(m: Monitoring, client: str, characters: int, cost: float | None) -> None:
    spec = CallSpec("sarvam", "translate")
    context = CallContext(spec)
    context.client, context.characters, context.cost_usd = client, characters, cost
    m.usage.on_call(CallEvent(spec, "success", None, 0.1, context))


async def test_usage_and_todays_spend_are_merged_once_local_while_away_and_rebuilt(fleet: Replicas) -> None:
    a, b = fleet.replicas
    translate(a, "team-a", 100, 0.5)
    translate(b, "team-b", 40, 0.25)
    translate(b, "team-b", 10, None)
    await fleet.sync(a, b, a, b)
    await fleet.sync(a, b)  # nothing new: nothing added twice
    for m in (a, b):
        report = m.usage_report(600, "10m")
        assert report.view == "fleet"
        assert (report.total.requests, report.total.unpriced, report.total.cost_usd) == (3, 1, 0.75)
        assert report.clients["team-b"].units == {"character": 50}
        assert report.services["sarvam.translate"].cost_usd == 0.75
        today = m.spend_today()
        assert (today.providers, today.unpriced) == ({"sarvam": 0.75}, 1)
    fleet.store.status = "down"
    assert a.usage_report(600, "10m").view == "local"
    assert a.usage_report(600, "10m").total.cost_usd == a.spend_today().cost_usd == 0.5
    fleet.store.status = "up"
    with fleet.server.client() as client:
        client.flushall()  # as a Redis restarted without persistence
    translate(a, "team-a", 1, 1.0)
    await fleet.sync(a, b, a, b)
    assert b.usage_report(600, "10m").total.cost_usd == b.spend_today().cost_usd == 1.75


async def test_saturation_is_the_busiest_replicas_and_a_silent_replica_ages_out(fleet: Replicas) -> None:
    a, b = fleet.replicas
    a.observe_saturation(lambda: {"openai": (10, 100)})
    b.observe_saturation(lambda: {"openai": (90, 100), "sarvam": (1, 4)})
    b.recorder.record("openai", "chat", False, 0.1, "timeout")
    b.recorder.on_breaker_change(CallSpec("openai", "chat"), "closed", "open")
    await fleet.sync(a, b, a)
    # b's breaker is open; a's own copy has not seen it yet: the fleet's state is b's.
    assert a.recorder.breaker_state(("openai", "chat")) == "open"
    assert a.recorder.window_stats(fleet.clock(), 300)[("openai", "chat")].circuit_state == 2
    assert a.recorder.saturation(fleet.clock()) == {"openai": 0.9, "sarvam": 0.25}
    last = a.recorder.last_error(("openai", "chat"))
    assert last is not None and last.error_type == "timeout"
    assert [r.replica for r in a.fleet_status().replicas] == ["replica-0", "replica-1"]
    fleet.clock.advance(REPLICA_AGE_OUT + 1)
    await fleet.sync(a)  # b stops reporting
    assert [r.replica for r in a.fleet_status().replicas] == ["replica-0"]
    assert a.recorder.saturation(fleet.clock()) == {"openai": 0.1}
    assert a.recorder.breaker_state(("openai", "chat")) == "closed"


async def test_a_view_not_refreshed_for_a_while_is_local(fleet: Replicas) -> None:
    a, _ = fleet.replicas
    await fleet.sync(a)
    assert a.recorder.view == "fleet"
    fleet.clock.advance(STALE_AFTER + 0.5)
    status = a.fleet_status()
    assert status.view == "local" and status.reason == "the fleet view is stale"


async def test_the_coarse_ring_is_shared_and_late_deltas_correct_sealed_windows(fleet: Replicas) -> None:
    """The error budgets' coarse ring goes through Redis like the fine one (its own prefix): a
    replica's burn rates over the long windows count every replica's calls, also calls another
    replica sent only after the slot was complete and already summed here."""
    first, second = fleet.replicas

    async def sync_all(*which: Monitoring) -> None:
        for m in which:
            for ring in (m.recorder, m.history):
                assert isinstance(ring, FleetRecorder)
                assert await ring.sync()

    def burn(m: Monitoring, window: str) -> float | None:
        [op] = m.slo_report(CHAT).operations
        return op.availability.burn_rates[window]

    record(first, "openai.chat", ok=98, failed=2)
    await sync_all(first, second)
    fleet.clock.advance(300)  # the coarse slot of those calls is complete
    record(second, "openai.chat", ok=99)
    record(first, "openai.chat", ok=1)  # recorded here, sent to Redis only later
    fleet.clock.advance(300)
    await sync_all(second)
    assert burn(second, "1h") == pytest.approx(2 / 199 / 0.005)  # the window's complete slots, summed
    await sync_all(first, second)
    assert burn(second, "1h") == pytest.approx(2 / 200 / 0.005), "a late delta corrects the sealed sum"
    fleet.clock.advance(2 * 3600)  # past the fine ring's hour: only the coarse ring has them
    await sync_all(first, second)
    assert burn(second, "5m") is None
    assert burn(first, "1d") == burn(second, "1d") == pytest.approx(2 / 200 / 0.005)
    assert second.slo_report(CHAT).view == "fleet"
