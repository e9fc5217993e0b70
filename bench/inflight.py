"""Memory per call in flight: the gateway's RSS with ``--calls`` chat calls held open upstream.

Starts the standalone simulator and the production-profile gateway as ``bench/concurrency.py``
does, makes the provider take a minute, sends ``--calls`` chat calls at once, waits until the
gateway counts them all in flight, and reports its RSS growth per call. It is the figure behind
the scale scenario's peak RSS, held still long enough to read and to take apart:

* ``--env K=V`` runs the gateway with a setting (``OTEL_SDK_DISABLED=true`` shows the telemetry's
  share, ``OTEL_TRACES_SAMPLER=parentbased_traceidratio`` with ``OTEL_TRACES_SAMPLER_ARG=0.1``
  what head sampling would save);
* ``--breakdown`` traces the gateway's allocations (``tracemalloc``, through
  ``bench/tracemalloc_hook``) and prints the bytes per call that each package holds. Tracing
  inflates RSS, so the RSS figure of a breakdown run is not the one to report.

    python bench/inflight.py --calls 2000
    python bench/inflight.py --calls 1000 --breakdown
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import sysconfig
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from app.stack.processes import free_port
from bench.concurrency import CHAT, Bench, gateway_env
from bench.servers import ROOT, Server, clean_environment, started, wait_ready

HOOK = Path(__file__).resolve().parent / "tracemalloc_hook"
PLACES = ((sysconfig.get_paths()["purelib"] + "/", ""), (str(ROOT) + "/", ""),
          (sysconfig.get_paths()["stdlib"] + "/", "stdlib:"))


def package(filename: str) -> str:
    """``aiohttp``, ``opentelemetry/sdk``, ``app/providers``, ``stdlib:asyncio`` and the like."""
    for prefix, label in PLACES:
        if filename.startswith(prefix):
            parts = filename[len(prefix):].split("/")
            depth = 2 if parts[0] in ("opentelemetry", "app", "litestar", "uvicorn") and len(parts) > 1 else 1
            return label + "/".join(parts[:depth]).removesuffix(".py")
    return filename


async def snapshot(gateway: Server, out: Path) -> dict[str, int]:
    out.unlink(missing_ok=True)
    os.kill(gateway.process.pid, signal.SIGUSR1)
    deadline = time.monotonic() + 300
    while not out.exists():
        if time.monotonic() > deadline:
            raise TimeoutError("the gateway wrote no tracemalloc snapshot")
        await asyncio.sleep(0.2)
    sizes: dict[str, int] = json.loads(out.read_text())
    return sizes


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        logs, out = Path(tmp), Path(tmp) / "tracemalloc.json"
        sim_port, gw_port = free_port(), free_port()
        env = {**gateway_env(sim_port, args.env), "OPENAI_MAX_CONCURRENCY": str(args.calls + 1000)}
        if args.breakdown:
            env |= {"PYTHONPATH": str(HOOK), "TRACEMALLOC_OUT": str(out)}
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                        timeout=aiohttp.ClientTimeout(total=600))
        with started("simulator", [sys.executable, "-m", "app", "simulate", "--port", str(sim_port)], sim_port,
                     "/_sim/faults", logs, env=clean_environment({})) as simulator, \
             started("gateway", [sys.executable, "-m", "app", "serve", "--port", str(gw_port)], gw_port,
                     "/health/ready", logs, env=clean_environment(env)) as gateway:
            async with session:
                # A gateway whose every allocation is traced (--breakdown) takes 40-60 s to start here.
                await wait_ready(session, [simulator, gateway], timeout=180 if args.breakdown else 60)
                bench = Bench(simulator, gateway, session)
                await bench.post("/v1/chat/completions", CHAT)  # first-call set-up is not per call
                await bench.fault(provider="openai", operation="chat", latency_ms=60_000)
                await asyncio.sleep(1.0)
                before = await snapshot(gateway, out) if args.breakdown else {}
                idle = gateway.rss_mib()
                calls = [asyncio.create_task(bench.post("/v1/chat/completions", CHAT)) for _ in range(args.calls)]

                async def all_in_flight() -> bool:
                    return bool(await bench.in_flight("openai") >= args.calls)

                await bench.until(all_in_flight, timeout=120)
                await asyncio.sleep(1.0)
                held = gateway.rss_mib()
                after = await snapshot(gateway, out) if args.breakdown else {}
                await bench.clear()
                for call in calls:
                    call.cancel()
                await asyncio.gather(*calls, return_exceptions=True)
    result: dict[str, Any] = {"calls": args.calls, "settings": args.env, "idle_rss_mib": round(idle, 1),
                              "held_rss_mib": round(held, 1),
                              "rss_kib_per_call": round((held - idle) * 1024 / args.calls, 1)}
    if args.breakdown:
        grown: Counter[str] = Counter()
        for filename in before.keys() | after.keys():
            grown[package(filename)] += after.get(filename, 0) - before.get(filename, 0)
        result["traced_kib_per_call"] = round(sum(grown.values()) / 1024 / args.calls, 1)
        result["bytes_per_call"] = {name: round(size / args.calls) for name, size in grown.most_common(args.top)}
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=2000, help="chat calls held in flight")
    parser.add_argument("--env", action="append", default=[], metavar="K=V", help="a setting for the gateway")
    parser.add_argument("--breakdown", action="store_true", help="traced bytes per call, by package")
    parser.add_argument("--top", type=int, default=25, help="packages listed in the breakdown")
    print(json.dumps(asyncio.run(measure(parser.parse_args())), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
