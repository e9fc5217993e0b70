"""What sharing the recorder through Redis costs (issue 13): CPU per request at 1,000 req/s.

Run: ``python bench/fleet.py`` (from the repository root, in the virtualenv; needs ``redis-server``).

Three replicas' recorders (:class:`app.monitoring.fleet.FleetRecorder`) share one real
``redis-server`` on a free loopback port. Each records 1,000 calls per second (9 provider
operations, 5% failing with one of three error types, latencies spread over the buckets) for
``--seconds`` seconds of traffic on a simulated clock, and flushes once per simulated second, as
the gateway's background task does: the deltas of its buckets go out and what the other replicas
changed comes back, in one round trip. It prints, for the measured replica:

* the CPU time (user + system of its thread) of its flushes, per second and per request: what
  sharing adds, since recording itself is the plain recorder's (also printed, per call, for the
  plain and the fleet recorder);
* the Redis server's CPU per request (all three replicas' flushes), read from ``/proc``;
* one alert evaluation over the fleet's merged buckets against one over the local rings.

Each successful call is also recorded by the usage recorder (issue 26): a priced call of one of
four named clients, whose buckets and UTC-day and -month totals ride along the same flush.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from pathlib import Path

import redis.asyncio as aioredis
from redis.exceptions import RedisError

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from app.calls import CallContext, CallEvent, CallSpec
from app.config import load_settings
from app.monitoring import Monitoring
from app.monitoring.fleet import FleetRecorder
from app.resilience.shared_state import StateHealth
from app.stack.processes import free_port
from bench.servers import Server, redis_server

OPERATIONS = [("sarvam", "translate"), ("sarvam", "tts"), ("sarvam", "stt"), ("deepgram", "stt"), ("deepgram", "tts"),
              ("openai", "chat"), ("openai", "embeddings"), ("rag", "query"), ("rag", "ingest")]
ERRORS = ("upstream_5xx", "timeout", "connection")
CLIENTS = ("team-a", "team-b", "team-c", "anonymous")
UP = StateHealth("redis", "up", time.time())


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def priced_calls() -> list[CallEvent]:
    """A successful call per provider operation and client, priced (the usage recorder reads its context)."""
    events = []
    for (provider, operation), client in ((o, c) for o in OPERATIONS for c in CLIENTS):
        ctx = CallContext(CallSpec(provider, operation), characters=120, client=client)
        ctx.cost_usd = 0.0003
        events.append(CallEvent(ctx.spec, "success", None, 0.2, ctx))
    return events


def record_second(monitoring: Monitoring, clock: Clock, start: float, rate: int, rng: random.Random,
                  events: list[CallEvent]) -> None:
    recorder = monitoring.recorder
    for i in range(rate):
        clock.now = start + i / rate
        provider, operation = OPERATIONS[i % len(OPERATIONS)]
        ok = rng.random() >= 0.05
        recorder.record(provider, operation, ok, rng.lognormvariate(-1.5, 1.0), None if ok else rng.choice(ERRORS))
        if ok:
            monitoring.usage.on_call(events[(i % len(OPERATIONS)) * len(CLIENTS) + i % len(CLIENTS)])
    clock.now = start + 1.0


def per_call_us(monitoring: Monitoring, calls: int) -> float:
    recorder, started = monitoring.recorder, time.perf_counter()
    for i in range(calls):
        recorder.record("openai", "chat", i % 20 != 0, 0.25, "upstream_5xx")
    return (time.perf_counter() - started) / calls * 1e6


async def run(seconds: int, rate: int, server: Server, port: int) -> None:
    url = f"redis://127.0.0.1:{port}/0"
    settings = load_settings({"STATE_REDIS_URL": url})
    clock = Clock(1_800_000_000.0)
    replicas = [Monitoring(settings, clock, instance=f"replica-{n}") for n in range(3)]
    clients = [aioredis.Redis.from_url(url) for _ in replicas]
    try:
        for _ in range(100):
            try:
                await clients[0].ping()
                break
            except (RedisError, OSError):
                await asyncio.sleep(0.05)
        recorders: list[FleetRecorder] = []
        for n, (monitoring, client) in enumerate(zip(replicas, clients, strict=True)):
            assert isinstance(monitoring.recorder, FleetRecorder)
            monitoring.recorder.connect(client, lambda: UP)
            monitoring.recorder.replica = f"bench-{n}"
            recorders.append(monitoring.recorder)
            await monitoring.recorder.sync()
        rng = random.Random(13)
        events = priced_calls()
        flush_cpu = 0.0
        redis_before = server.cpu_seconds()
        for _second in range(seconds):
            start = clock.now
            for monitoring in replicas:
                record_second(monitoring, clock, start, rate, rng, events)
            for n, recorder in enumerate(recorders):
                began = time.thread_time()
                assert await recorder.sync()
                if n == 0:
                    flush_cpu += time.thread_time() - began
        redis_cpu = server.cpu_seconds() - redis_before
        measured = replicas[0]
        assert await recorders[0].sync()  # what the others flushed after replica 0's last flush
        window = settings.alerts.window
        fleet_totals = measured.recorder.aggregate(OPERATIONS, clock.now - seconds - 1, clock.now).requests
        usage = measured.usage_report(seconds + 1, f"{seconds + 1}s")
        began = time.perf_counter()
        measured.evaluator.evaluate(clock.now)
        fleet_eval = time.perf_counter() - began
        local = Monitoring(load_settings({}), clock)
        for _second in range(min(seconds, int(window))):
            record_second(local, clock, clock.now, rate, rng, events)
        began = time.perf_counter()
        local.evaluator.evaluate(clock.now)
        local_eval = time.perf_counter() - began
        requests = seconds * rate
        print(f"{len(replicas)} replicas x {rate} req/s for {seconds} s of traffic, flushed once a second")
        print(f"  fleet totals read back by replica 0: {fleet_totals} calls (expected {requests * len(replicas)})")
        print(f"  replica 0 flush CPU: {flush_cpu / seconds * 1000:.2f} ms per second, "
              f"{flush_cpu / requests * 1000:.5f} ms per request")
        print(f"  redis-server CPU (all replicas' flushes): {redis_cpu / (requests * len(replicas)) * 1000:.5f} ms "
              f"per request")
        print(f"  recording per call: plain recorder {per_call_us(local, 200_000):.2f} us, "
              f"fleet recorder {per_call_us(measured, 200_000):.2f} us")
        print(f"  one alert evaluation: fleet view {fleet_eval * 1000:.2f} ms, local rings {local_eval * 1000:.2f} ms")
        assert fleet_totals == requests * len(replicas), "the fleet view lost calls"
        print(f"  priced calls in replica 0's fleet usage report: {usage.total.requests} "
              f"(about {0.95 * requests * len(replicas):.0f} expected), {len(usage.clients)} clients")
        assert usage.view == "fleet" and usage.total.requests > 0.9 * requests * len(replicas), "usage lost calls"
    finally:
        for client in clients:
            await client.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=120, help="seconds of traffic (simulated clock)")
    parser.add_argument("--rate", type=int, default=1000, help="requests per second per replica")
    args = parser.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory() as logs, redis_server(port, Path(logs)) as server:
        asyncio.run(run(args.seconds, args.rate, server, port))


if __name__ == "__main__":
    main()
