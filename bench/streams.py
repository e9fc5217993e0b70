"""Live speech sessions through the gateway, against the simulator, and directly, side by side.

Starts, as subprocesses on free loopback ports, the standalone simulator and the gateway in its
production profile (Deepgram pointed at the simulator, its rate limit and bulkhead out of the way;
``--workers`` processes, one per core by default, sharing their state in a ``redis-server`` it
starts when there are more than one, as a gateway on a machine of its own would run),
then opens ``--sessions`` sessions directly to the simulator's ``/_sim/deepgram/v1/listen``, all at
once, and after them as many to ``/deepgram/v1/listen`` through the gateway (``--together``: both
sides at once, which on a small machine measures the client and the simulator competing for the
cores as much as the gateway). Each session sends real-time paced audio, 16 kHz 16-bit mono in
100 ms frames, for ``--seconds``; the simulator answers a ``Results`` message for each second of
audio, right after the frame that completes it. Every session is open before any sends; session i
then starts i/N of ``--spread`` seconds after the first, so that frames, results and ends spread
over time as real speakers' do (started at one instant, every session's result would fall in the
same 100 ms each second, and all N would end in the same moment; a session's end costs the gateway
about ten messages' CPU: its span, its metrics, its price). One pacer sends every session's frames
on a 1 ms clock. Both phases run ``--rounds`` times, one after the other; each latency figure is
the median of the rounds' (a few seconds in which the host's other tenants take a fifth of the
CPUs spoil one round's tail, not the run's), and every round's figures are printed too. Measured:

* latency per result message (from sending the frame that completes a second of audio to the
  ``Results`` for it), p50 and p99, through the gateway and directly: the difference is what the
  gateway adds per message;
* how late the senders ran against their 100 ms schedule (is the run itself real time?);
* the gateway's CPU time per relayed frame (caller frames in plus provider messages out);
* the gateway's RSS per open session (RSS with every session of the first round open minus idle
  RSS);
* the cores each process (gateway, simulator, redis-server, this client) used while the sessions
  ran, and the share of the machine's CPU time the host took meanwhile (``host_steal``: on a shared
  virtual machine, a run with more than a few percent measures the host's other tenants in its
  tails);
* the bulkhead slots in flight after every session closed (must be 0).

    python bench/streams.py                          # 5 rounds of 500 sessions for 20 s
    python bench/streams.py --sessions 20 --seconds 3 --rounds 2 --json out.json

Exits 0 when every session got every result and every slot was returned, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.stack.processes import free_port
from bench.servers import Server, clean_environment, machine_cpu, redis_server, started, steal_share, wait_ready

RATE = 16000
FRAME = b"\0" * (RATE * 2 // 10)
"""100 ms of 16-bit mono silence at 16 kHz."""
FRAMES_PER_RESULT = 10
QUERY = "?model=nova-3&encoding=linear16&sample_rate=16000"
AUTH = {"Authorization": "Token bench"}


@dataclass
class Side:
    """What the sessions of one side (through the gateway, or direct) saw."""

    latencies: list[float] = field(default_factory=list)
    lateness: list[float] = field(default_factory=list)
    results: int = 0
    failures: list[str] = field(default_factory=list)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


TICK = 0.001
"""The senders' clock: every frame is due on a 1 ms tick, and one wakeup sends every frame due on
it (a timer and a task switch per session and frame cost the client more CPU than its sends)."""
TICKS_PER_FRAME = round(0.1 / TICK)


@dataclass
class Speaker:
    """One open session as the pacer sees it: when it starts sending, and its frames in flight."""

    ws: aiohttp.ClientWebSocketResponse
    side: Side
    offset: int
    """Ticks after the first session's start."""
    sent: deque[float] = field(default_factory=deque)
    """When each frame that completes a second of audio went out, until its ``Results`` comes."""
    error: Exception | None = None


async def pace(speakers: list[Speaker], frames: int) -> None:
    """Send every speaker's ``frames`` frames in real time, then ``CloseStream``; a failed send
    ends that speaker's sending (and is reported as its side's failure), not the others'."""
    loop = asyncio.get_running_loop()
    slots: list[list[Speaker]] = [[] for _ in range(TICKS_PER_FRAME)]
    for speaker in speakers:
        slots[speaker.offset % TICKS_PER_FRAME].append(speaker)
    start = loop.time()
    for tick in range(1, max((s.offset for s in speakers), default=0) + TICKS_PER_FRAME * frames + 1):
        due = start + tick * TICK
        await asyncio.sleep(max(0.0, due - loop.time()))
        for speaker in slots[tick % TICKS_PER_FRAME]:
            n = (tick - speaker.offset) // TICKS_PER_FRAME
            if not 1 <= n <= frames or speaker.error is not None:
                continue
            speaker.side.lateness.append(loop.time() - due)
            if n % FRAMES_PER_RESULT == 0:
                speaker.sent.append(time.perf_counter())
            try:
                await speaker.ws.send_bytes(FRAME)
                if n == frames:
                    await speaker.ws.send_str('{"type":"CloseStream"}')
            except Exception as exc:  # reported, not raised: one failed session must not stop the others
                speaker.error = exc
                speaker.side.failures.append(f"{type(exc).__name__}: {exc}")


async def session(http: aiohttp.ClientSession, url: str, side: Side, offset: int, speakers: list[Speaker],
                  ready: asyncio.Future[None]) -> None:
    """One session: open it and hand it to the pacer (``ready`` is set once it is open or failed
    to), then time each ``Results`` against the frame that completed its second of audio until the
    provider closes after ``CloseStream``."""
    try:
        # No per-message deflate on either side (aiohttp offers it by default; the gateway refuses it):
        async with http.ws_connect(url, headers=AUTH, max_msg_size=0, compress=0) as ws:
            speaker = Speaker(ws, side, offset)
            speakers.append(speaker)
            ready.set_result(None)
            async for message in ws:
                if message.type is not aiohttp.WSMsgType.TEXT:
                    break
                if '"Results"' in message.data and speaker.sent:
                    side.latencies.append(time.perf_counter() - speaker.sent.popleft())
                    side.results += 1
    except Exception as exc:  # reported, not raised: one failed session must not hide the others
        side.failures.append(f"{type(exc).__name__}: {exc}")
    finally:
        if not ready.done():
            ready.set_result(None)


async def in_flight(http: aiohttp.ClientSession, gateway: Server) -> int:
    async with http.get(f"{gateway.url}/health/services/deepgram") as response:
        return int((await response.json())["concurrency"]["in_flight"])


async def phase(http: aiohttp.ClientSession, group: tuple[tuple[str, Side], ...], frames: int, sessions: int,
                spread: float, servers: dict[str, Server]) -> tuple[float, float, dict[str, float]]:
    """``sessions`` sessions to each URL of ``group`` at once: the gateway's RSS with all of them
    open, its CPU seconds while they ran, and the cores each process used meanwhile (with the
    host's steal)."""
    loop = asyncio.get_running_loop()
    speakers: list[Speaker] = []
    sides: dict[asyncio.Task[None], Side] = {}
    readies: list[asyncio.Future[None]] = []
    for i in range(sessions):
        offset = round(spread * i / sessions / TICK)  # session i starts i/N of the spread late
        for url, side in group:
            readies.append(loop.create_future())
            sides[asyncio.create_task(session(http, url, side, offset, speakers, readies[-1]))] = side
    await asyncio.wait_for(asyncio.gather(*readies), 300)
    held_rss = servers["gateway"].rss_mib()

    def cpu_seconds() -> dict[str, float]:
        return {**{name: server.cpu_seconds() for name, server in servers.items()}, "client": time.process_time()}

    machine, before = machine_cpu(), cpu_seconds()
    wall = time.perf_counter()
    await pace(speakers, frames)
    _, late = await asyncio.wait(sides, timeout=30)
    for task in late:
        task.cancel()
        sides[task].failures.append("no close within 30 s of the last frame")
    wall = time.perf_counter() - wall
    after = cpu_seconds()
    shares = {name: round((after[name] - before[name]) / wall, 2) for name in before}
    shares["host_steal"] = steal_share(machine, machine_cpu())
    return held_rss, after["gateway"] - before["gateway"], shares


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    frames = round(args.seconds * 10)
    with tempfile.TemporaryDirectory() as tmp:
        logs = Path(tmp)
        sim_port, gw_port = free_port(), free_port()
        sim = f"http://127.0.0.1:{sim_port}/_sim"
        env = {"ENVIRONMENT": "production", "HEALTH_CHECK_INTERVAL": "3600", "DEEPGRAM_BASE_URL": sim + "/deepgram",
               "DEEPGRAM_RATE_LIMIT": "10000000", "DEEPGRAM_MAX_CONCURRENCY": str(args.sessions + 100)}
        http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), timeout=aiohttp.ClientTimeout(total=None))
        with contextlib.ExitStack() as stack:
            servers: dict[str, Server] = {}
            if args.workers > 1:  # the worker processes share their state (limits, bulkhead, breaker) in Redis
                redis_port = free_port()
                servers["redis"] = stack.enter_context(redis_server(redis_port, logs))
                env["STATE_REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/0"
            servers["simulator"] = simulator = stack.enter_context(started(
                "simulator", [sys.executable, "-m", "app", "simulate", "--port", str(sim_port)], sim_port,
                "/_sim/faults", logs, env=clean_environment({})))
            servers["gateway"] = gateway = stack.enter_context(started(
                "gateway", [sys.executable, "-m", "app", "serve", "--port", str(gw_port), "--workers",
                            str(args.workers)], gw_port, "/health/ready", logs, env=clean_environment(env)))
            async with http:
                await wait_ready(http, [simulator, gateway])
                gw_url = f"ws://127.0.0.1:{gw_port}/deepgram/v1/listen{QUERY}"
                sim_url = f"ws://127.0.0.1:{sim_port}/_sim/deepgram/v1/listen{QUERY}"
                # First-session set-up (imports, the upstream client) is not per session (a few, so
                # that each worker process is likely to have had one):
                await phase(http, ((gw_url, Side()),), FRAMES_PER_RESULT, 2 * args.workers, 1.0, servers)
                await asyncio.sleep(0.5)
                idle_rss = gateway.rss_mib()
                rounds: list[Round] = []
                for _ in range(args.rounds):
                    through, direct = Side(), Side()
                    phases = {"together": ((gw_url, through), (sim_url, direct))} if args.together else \
                        {"direct": ((sim_url, direct),), "gateway": ((gw_url, through),)}
                    results = {name: await phase(http, group, frames, args.sessions, args.spread, servers)
                               for name, group in phases.items()}
                    held_rss, cpu, _ = results["together" if args.together else "gateway"]
                    rounds.append(Round(through, direct, held_rss, cpu, {name: r[2] for name, r in results.items()}))
                await asyncio.sleep(0.5)
                left = await in_flight(http, gateway)
    return figures_of(args, frames, idle_rss, rounds, left)


@dataclass(frozen=True)
class Round:
    """One round of both phases."""

    through: Side
    direct: Side
    held_rss: float
    """The gateway's RSS (MiB) with the round's sessions open."""
    cpu: float
    """The gateway's CPU seconds while they ran."""
    cores: dict[str, dict[str, float]]
    """The cores each process used, per phase."""


def figures_of(args: argparse.Namespace, frames: int, idle_rss: float, rounds: list[Round],
                left: int) -> dict[str, Any]:
    """The run's figures: latencies are each round's, then the median over the rounds (a burst of
    the host's other tenants spoils a round, not the run); counts and CPU are over every round."""

    def ms(values: list[float], q: float) -> float:
        return round(percentile(values, q) * 1000, 2)

    latencies: list[dict[str, float]] = []
    for r in rounds:
        figures = {"gateway_p50_ms": ms(r.through.latencies, 0.5), "gateway_p99_ms": ms(r.through.latencies, 0.99),
                   "direct_p50_ms": ms(r.direct.latencies, 0.5), "direct_p99_ms": ms(r.direct.latencies, 0.99)}
        figures["added_p50_ms"] = round(figures["gateway_p50_ms"] - figures["direct_p50_ms"], 2)
        figures["added_p99_ms"] = round(figures["gateway_p99_ms"] - figures["direct_p99_ms"], 2)
        latencies.append(figures)
    through_results = sum(r.through.results for r in rounds)
    direct_results = sum(r.direct.results for r in rounds)
    relayed = len(rounds) * args.sessions * (frames + 1) + through_results
    expected = len(rounds) * args.sessions * (frames // FRAMES_PER_RESULT)
    failures = {"gateway": [f for r in rounds for f in r.through.failures][:5],
                "direct": [f for r in rounds for f in r.direct.failures][:5]}
    cores = [r.cores for r in rounds]
    run: dict[str, Any] = {
        "sessions": args.sessions, "seconds": args.seconds, "spread": args.spread, "rounds": len(rounds),
        "workers": args.workers,
        **{name: round(statistics.median(r[name] for r in latencies), 2) for name in latencies[0]},
        "sender_lateness_p99_ms": ms([x for r in rounds for x in (*r.through.lateness, *r.direct.lateness)], 0.99),
        "gateway_cpu_us_per_frame": round(sum(r.cpu for r in rounds) / relayed * 1e6, 1) if relayed else None,
        # The first round's: memory freed by a round's sessions stays with the process for the next.
        "gateway_rss_kib_per_session": round((rounds[0].held_rss - idle_rss) * 1024 / args.sessions, 1),
        "cpu_cores_used": {phase: {name: round(statistics.mean(c[phase][name] for c in cores), 3)
                                   for name in cores[0][phase]} for phase in cores[0]},
        "per_round": [{**r, "cpu_cores_used": c} for r, c in zip(latencies, cores, strict=True)],
        "results": {"gateway": through_results, "direct": direct_results, "expected_each": expected},
        "failures": failures,
        "in_flight_after": left,
    }
    run["passed"] = (through_results == expected == direct_results and left == 0
                     and not failures["gateway"] and not failures["direct"])
    return run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=500, help="sessions through the gateway (and as many direct)")
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds of audio each session sends")
    parser.add_argument("--spread", type=float, default=5.0,
                        help="seconds over which the sessions start sending (and so end), 1 at the least")
    parser.add_argument("--together", action="store_true",
                        help="run both sides at once (default: the direct sessions, then as many through the gateway)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="the gateway's worker processes, one per core by default (more than 1: their state "
                             "shared in a redis-server, as --workers requires)")
    parser.add_argument("--rounds", type=int, default=5,
                        help="rounds of both phases, one after the other; latencies are the median round's")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if args.rounds < 1 or args.workers < 1:
        parser.error("--rounds and --workers: at least 1")
    if args.spread < 1:
        parser.error("--spread: at least 1 (a second), so that results spread over each second")
    figures = uvloop.run(measure(args))  # the client on the loop the gateway and simulator run on
    text = json.dumps(figures, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text)
    return 0 if figures["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
