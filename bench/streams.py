"""Live speech sessions through the gateway, against the simulator, and directly, side by side.

Starts, as subprocesses on free loopback ports, the standalone simulator and the gateway in its
production profile (Deepgram pointed at the simulator, its rate limit and bulkhead out of the way),
then opens ``--sessions`` sessions directly to the simulator's ``/_sim/deepgram/v1/listen``, all at
once, and after them as many to ``/deepgram/v1/listen`` through the gateway (``--together``: both
sides at once, which on a small machine measures the client and the simulator competing for the
cores as much as the gateway). Each session sends real-time paced audio, 16 kHz 16-bit mono in
100 ms frames, for ``--seconds``; the simulator answers a ``Results`` message for each second of
audio, right after the frame that completes it. Every session is open before any sends; session i
then starts i/N of ``--spread`` seconds after the first, so that frames, results and ends spread
over time as real speakers' do (started at one instant, every session's result would fall in the
same 100 ms each second, and all N would end in the same moment; a session's end costs the gateway
about ten messages' CPU: its span, its metrics, its price). Measured:

* latency per result message (from sending the frame that completes a second of audio to the
  ``Results`` for it), p50 and p99, through the gateway and directly: the difference is what the
  gateway adds per message;
* how late the senders ran against their 100 ms schedule (is the run itself real time?);
* the gateway's CPU time per relayed frame (caller frames in plus provider messages out);
* the gateway's RSS per open session (RSS with every session open minus idle RSS);
* the cores each process (gateway, simulator, this client) used while the sessions ran, and the
  share of the machine's CPU time the host took meanwhile (``host_steal``: on a shared virtual
  machine, a run with more than a few percent measures the host's other tenants in its tails);
* the bulkhead slots in flight after every session closed (must be 0).

    python bench/streams.py                          # 500 sessions for 20 s
    python bench/streams.py --sessions 20 --seconds 3 --json out.json

Exits 0 when every session got every result and every slot was returned, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
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
from bench.servers import Server, clean_environment, machine_cpu, started, steal_share, wait_ready

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


async def session(http: aiohttp.ClientSession, url: str, frames: int, side: Side, opened: asyncio.Event,
                  go: asyncio.Event, open_count: list[int], total: int, offset: float = 0.0) -> None:
    """One paced session: ``frames`` frames of 100 ms, a result timed for each full second; it
    waits for ``go`` once open (``opened`` is set when every session is open or failed to), then
    ``offset`` seconds more, so that sessions send at different moments as real speakers do."""
    counted = False

    def count() -> None:
        nonlocal counted
        if not counted:
            counted = True
            open_count[0] += 1
            if open_count[0] == total:
                opened.set()

    try:
        async with http.ws_connect(url, headers=AUTH, max_msg_size=0) as ws:
            count()
            await go.wait()
            sent: deque[float] = deque()

            async def receive() -> None:
                async for message in ws:
                    if message.type is not aiohttp.WSMsgType.TEXT:
                        break
                    if '"Results"' in message.data and sent:
                        side.latencies.append(time.perf_counter() - sent.popleft())
                        side.results += 1

            reader = asyncio.create_task(receive())
            loop = asyncio.get_running_loop()
            start = loop.time() + offset
            for n in range(1, frames + 1):
                due = start + n * 0.1
                await asyncio.sleep(max(0.0, due - loop.time()))
                side.lateness.append(loop.time() - due)
                if n % FRAMES_PER_RESULT == 0:
                    sent.append(time.perf_counter())
                await ws.send_bytes(FRAME)
            await ws.send_str('{"type":"CloseStream"}')
            await asyncio.wait_for(reader, 30)
    except Exception as exc:  # reported, not raised: one failed session must not hide the others
        side.failures.append(f"{type(exc).__name__}: {exc}")
    finally:
        count()


async def in_flight(http: aiohttp.ClientSession, gateway: Server) -> int:
    async with http.get(f"{gateway.url}/health/services/deepgram") as response:
        return int((await response.json())["concurrency"]["in_flight"])


async def phase(http: aiohttp.ClientSession, group: tuple[tuple[str, Side], ...], frames: int, sessions: int,
                spread: float, gateway: Server, simulator: Server) -> tuple[float, float, dict[str, float]]:
    """``sessions`` sessions to each URL of ``group`` at once: the gateway's RSS with all of them
    open, its CPU seconds while they ran, and the cores each process used meanwhile (with the
    host's steal)."""
    opened, go = asyncio.Event(), asyncio.Event()
    count = [0]
    total = len(group) * sessions
    # Session i starts sending i/N of the spread late (see the module's description).
    tasks = [asyncio.create_task(session(http, url, frames, side, opened, go, count, total, spread * i / sessions))
             for i in range(sessions) for url, side in group]
    await asyncio.wait_for(opened.wait(), 300)
    held_rss = gateway.rss_mib()
    before, machine = (gateway.cpu_seconds(), simulator.cpu_seconds(), time.process_time()), machine_cpu()
    wall = time.perf_counter()
    go.set()
    await asyncio.gather(*tasks)
    wall = time.perf_counter() - wall
    after = gateway.cpu_seconds(), simulator.cpu_seconds(), time.process_time()
    names = ("gateway", "simulator", "client")
    shares = {name: round((b - a) / wall, 2) for name, a, b in zip(names, before, after, strict=True)}
    shares["host_steal"] = steal_share(machine, machine_cpu())
    return held_rss, after[0] - before[0], shares


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    frames = round(args.seconds * 10)
    with tempfile.TemporaryDirectory() as tmp:
        logs = Path(tmp)
        sim_port, gw_port = free_port(), free_port()
        sim = f"http://127.0.0.1:{sim_port}/_sim"
        env = {"ENVIRONMENT": "production", "HEALTH_CHECK_INTERVAL": "3600", "DEEPGRAM_BASE_URL": sim + "/deepgram",
               "DEEPGRAM_RATE_LIMIT": "10000000", "DEEPGRAM_MAX_CONCURRENCY": str(args.sessions + 100)}
        http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), timeout=aiohttp.ClientTimeout(total=None))
        with started("simulator", [sys.executable, "-m", "app", "simulate", "--port", str(sim_port)], sim_port,
                     "/_sim/faults", logs, env=clean_environment({})) as simulator, \
             started("gateway", [sys.executable, "-m", "app", "serve", "--port", str(gw_port)], gw_port,
                     "/health/ready", logs, env=clean_environment(env)) as gateway:
            async with http:
                await wait_ready(http, [simulator, gateway])
                gw_url = f"ws://127.0.0.1:{gw_port}/deepgram/v1/listen{QUERY}"
                sim_url = f"ws://127.0.0.1:{sim_port}/_sim/deepgram/v1/listen{QUERY}"
                now = asyncio.Event()
                now.set()  # first-session set-up (imports, the upstream client) is not per session:
                await session(http, gw_url, FRAMES_PER_RESULT, Side(), asyncio.Event(), now, [0], 1)
                await asyncio.sleep(0.5)
                idle_rss = gateway.rss_mib()
                through, direct = Side(), Side()
                phases = {"together": ((gw_url, through), (sim_url, direct))} if args.together else \
                    {"direct": ((sim_url, direct),), "gateway": ((gw_url, through),)}
                results = {name: await phase(http, group, frames, args.sessions, args.spread, gateway, simulator)
                           for name, group in phases.items()}
                held_rss, cpu, _ = results["together" if args.together else "gateway"]
                await asyncio.sleep(0.5)
                left = await in_flight(http, gateway)
    relayed = args.sessions * (frames + 1) + through.results
    expected = args.sessions * (frames // FRAMES_PER_RESULT)
    figures = {
        "sessions": args.sessions, "seconds": args.seconds, "spread": args.spread,
        "gateway_p50_ms": round(percentile(through.latencies, 0.5) * 1000, 2),
        "gateway_p99_ms": round(percentile(through.latencies, 0.99) * 1000, 2),
        "direct_p50_ms": round(percentile(direct.latencies, 0.5) * 1000, 2),
        "direct_p99_ms": round(percentile(direct.latencies, 0.99) * 1000, 2),
        "sender_lateness_p99_ms": round(percentile(through.lateness + direct.lateness, 0.99) * 1000, 2),
        "gateway_cpu_us_per_frame": round(cpu / relayed * 1e6, 1) if relayed else None,
        "gateway_rss_kib_per_session": round((held_rss - idle_rss) * 1024 / args.sessions, 1),
        "cpu_cores_used": {name: shares for name, (_, _, shares) in results.items()},
        "results": {"gateway": through.results, "direct": direct.results, "expected_each": expected},
        "failures": {"gateway": through.failures[:5], "direct": direct.failures[:5]},
        "in_flight_after": left,
    }
    figures["added_p50_ms"] = round(figures["gateway_p50_ms"] - figures["direct_p50_ms"], 2)
    figures["added_p99_ms"] = round(figures["gateway_p99_ms"] - figures["direct_p99_ms"], 2)
    figures["passed"] = (through.results == expected == direct.results and left == 0
                         and not through.failures and not direct.failures)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=500, help="sessions through the gateway (and as many direct)")
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds of audio each session sends")
    parser.add_argument("--spread", type=float, default=5.0,
                        help="seconds over which the sessions start sending (and so end), 1 at the least")
    parser.add_argument("--together", action="store_true",
                        help="run both sides at once (default: the direct sessions, then as many through the gateway)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
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
