"""Isolation, overflow and scale under concurrency: the bulkhead per provider, measured.

Starts, as subprocesses on free loopback ports, the standalone simulator (``python -m app
simulate``) and the gateway in its production profile (``python -m app serve``), every provider
pointed at the simulator and every rate limit out of the way, then runs three scenarios against
them in one run:

* isolation: ``--hanging`` Deepgram TTS calls against a hanging Deepgram while chat calls go to a
  healthy OpenAI; the chat calls' p99 must stay within 0.3 s, and the gateway must record OpenAI's
  latency as the provider's own (its p95 in ``/health/metrics``);
* overflow: ``--burst`` chat calls at once against a limit of ``--limit`` while the provider takes
  10 s: the refusals must all be answered within 0.5 s; then steady overload (the limit held, more
  callers arriving) with refusals within 50 ms at p99;
* scale: ``--scale`` concurrent chat calls whose provider takes 2 s, with the limit raised above
  them: all answered 200 within 10 s in total, the gateway's peak RSS minus its idle RSS within
  250 MB, and its CPU time per request.

    python bench/concurrency.py                      # the issue's figures
    python bench/concurrency.py --mode ci            # bounded: isolation and overflow answers only
    python bench/concurrency.py --json out.json

Exits 0 when every target holds (``--mode ci``: every property, no timings), 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from app.stack.processes import free_port
from bench.servers import Server, clean_environment, started, wait_ready

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}]}
TTS = {"text": "hello there", "language_code": "en-US", "provider": "deepgram"}
UNLIMITED = {f"{p}_RATE_LIMIT": "10000000" for p in ("SARVAM", "DEEPGRAM", "OPENAI", "RAG")}


def gateway_env(sim_port: int, settings: list[str]) -> dict[str, str]:
    """The production profile pointed at the simulator on ``sim_port``, every rate limit out of
    the way, plus ``settings`` (``K=V``)."""
    sim = f"http://127.0.0.1:{sim_port}/_sim"
    return {**dict(v.split("=", 1) for v in settings), "ENVIRONMENT": "production", **UNLIMITED,
            "HEALTH_CHECK_INTERVAL": "3600", "SARVAM_BASE_URL": sim + "/sarvam",
            "DEEPGRAM_BASE_URL": sim + "/deepgram", "OPENAI_BASE_URL": sim + "/openai/v1"}


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


@dataclass
class Result:
    """One scenario's figures and whether its targets held."""

    name: str
    figures: dict[str, Any] = field(default_factory=dict)
    checks: dict[str, bool] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(self.checks.values())


class Bench:
    def __init__(self, simulator: Server, gateway: Server, session: aiohttp.ClientSession) -> None:
        self.simulator, self.gateway, self.session = simulator, gateway, session

    async def fault(self, **fault: Any) -> None:
        async with self.session.put(self.simulator.url + "/_sim/faults", json=fault) as response:
            assert response.status == 200, await response.text()

    async def clear(self) -> None:
        async with self.session.delete(self.simulator.url + "/_sim/faults") as response:
            assert response.status == 200

    async def post(self, path: str, body: dict[str, Any]) -> tuple[int, float, str]:
        """Status, seconds and ``error_type`` (for a problem answer) of one call, read to the end."""
        started = time.perf_counter()
        try:
            async with self.session.post(self.gateway.url + path, json=body) as response:
                raw = await response.read()
                error = ""
                if response.content_type == "application/problem+json":
                    error = json.loads(raw).get("error_type", "")
                return response.status, time.perf_counter() - started, error
        except aiohttp.ClientError as exc:
            return 0, time.perf_counter() - started, type(exc).__name__

    async def in_flight(self, provider: str) -> int:
        async with self.session.get(f"{self.gateway.url}/health/services/{provider}") as response:
            return int((await response.json())["concurrency"]["in_flight"])

    async def until(self, check: Callable[[], Awaitable[bool]], timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not await check():
            if time.monotonic() > deadline:
                raise TimeoutError("condition not reached")
            await asyncio.sleep(0.05)

    async def recorded_p95_ms(self, service: str) -> float | None:
        async with self.session.get(self.gateway.url + "/health/metrics") as response:
            found = (await response.json())["services"].get(service) or {}
            value = found.get("latency_p95_ms")
            return float(value) if value is not None else None


async def isolation(bench: Bench, hanging: int, seconds: float, ci: bool) -> Result:
    result = Result("isolation")
    await bench.fault(provider="deepgram", operation="tts", hang=True)
    held = [asyncio.create_task(bench.post("/v1/tts", TTS)) for _ in range(hanging)]
    await bench.until(lambda: _settled(held, bench))
    refused = Counter((t.result()[0], t.result()[2]) for t in held if t.done())
    in_flight = await bench.in_flight("deepgram")

    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    deadline = time.perf_counter() + seconds

    async def chatter() -> None:
        while time.perf_counter() < deadline:
            status, elapsed, _ = await bench.post("/v1/chat/completions", CHAT)
            statuses[status] += 1
            latencies.append(elapsed)

    await asyncio.gather(*(chatter() for _ in range(8)))
    recorded = await bench.recorded_p95_ms("openai.chat")
    await bench.clear()
    await asyncio.gather(*held)
    p99 = percentile(latencies, 0.99)
    result.figures = {"hanging_calls": hanging, "deepgram_in_flight": in_flight,
                      "deepgram_refused": {f"{s} {e}": n for (s, e), n in refused.items()},
                      "chat_calls": len(latencies), "chat_statuses": dict(statuses),
                      "chat_p50_ms": round(percentile(latencies, 0.5) * 1000, 2), "chat_p99_ms": round(p99 * 1000, 2),
                      "openai_chat_recorded_p95_ms": recorded}
    result.checks = {"every chat call answered 200": set(statuses) == {200},
                     "deepgram refusals are all 503 overloaded": set(refused) <= {(503, "overloaded")}}
    if not ci:
        result.checks["chat p99 within 0.3 s"] = p99 <= 0.3
        result.checks["OpenAI recorded as fast (p95 within 0.3 s)"] = recorded is not None and recorded <= 300
    return result


async def _settled(held: list[asyncio.Task[tuple[int, float, str]]], bench: Bench) -> bool:
    """Every call is either refused or in flight upstream."""
    return sum(t.done() for t in held) + await bench.in_flight("deepgram") == len(held)


async def overflow(bench: Bench, limit: int, burst: int, steady_seconds: float, ci: bool) -> Result:
    result = Result("overflow")
    await bench.fault(provider="openai", operation="chat", latency_ms=10_000)
    calls = [asyncio.create_task(bench.post("/v1/chat/completions", CHAT)) for _ in range(burst)]
    await bench.until(lambda: _refused(calls, burst - limit))
    refusals = [t.result() for t in calls if t.done()]
    burst_max = max(elapsed for _, elapsed, _ in refusals)

    steady: list[tuple[int, float, str]] = []
    deadline = time.perf_counter() + steady_seconds

    async def caller() -> None:
        while time.perf_counter() < deadline:
            steady.append(await bench.post("/v1/chat/completions", CHAT))

    await asyncio.gather(*(caller() for _ in range(16)))
    await bench.clear()
    for task in calls:
        task.cancel()
    await asyncio.gather(*calls, return_exceptions=True)
    steady_times = [elapsed for _, elapsed, _ in steady]
    result.figures = {"limit": limit, "burst": burst, "burst_refused": len(refusals),
                      "burst_refusal_max_ms": round(burst_max * 1000, 2),
                      "steady_refusals": len(steady),
                      "steady_refusal_p99_ms": round(percentile(steady_times, 0.99) * 1000, 2),
                      "steady_refusals_per_s": round(len(steady) / steady_seconds)}
    result.checks = {
        "the burst's overflow refused as 503 overloaded": {(s, e) for s, _, e in refusals} == {(503, "overloaded")}
        and len(refusals) == burst - limit,
        "steady overflow refused as 503 overloaded": {(s, e) for s, _, e in steady} == {(503, "overloaded")},
    }
    if not ci:
        result.checks["burst refusals within 0.5 s"] = burst_max <= 0.5
        result.checks["steady refusals within 50 ms at p99"] = percentile(steady_times, 0.99) <= 0.05
    return result


async def _refused(calls: list[asyncio.Task[tuple[int, float, str]]], expected: int) -> bool:
    return sum(t.done() for t in calls) >= expected


async def scale(bench: Bench, calls: int) -> Result:
    result = Result("scale")
    await bench.fault(provider="openai", operation="chat", latency_ms=2000)
    idle_rss = bench.gateway.rss_mib()
    cpu_before = bench.gateway.cpu_seconds()
    peak = idle_rss
    done = False

    async def sample_rss() -> None:
        nonlocal peak
        while not done:
            peak = max(peak, bench.gateway.rss_mib())
            await asyncio.sleep(0.05)

    sampler = asyncio.create_task(sample_rss())
    started_at = time.perf_counter()
    answers = await asyncio.gather(*(bench.post("/v1/chat/completions", CHAT) for _ in range(calls)))
    total = time.perf_counter() - started_at
    done = True
    await sampler
    cpu = bench.gateway.cpu_seconds() - cpu_before
    await bench.clear()
    statuses = Counter(status for status, _, _ in answers)
    result.figures = {"calls": calls, "total_s": round(total, 2), "statuses": dict(statuses),
                      "latency_p50_s": round(statistics.median(e for _, e, _ in answers), 3),
                      "latency_max_s": round(max(e for _, e, _ in answers), 3),
                      "idle_rss_mib": round(idle_rss, 1), "peak_rss_mib": round(peak, 1),
                      "rss_growth_mib": round(peak - idle_rss, 1),
                      "gateway_cpu_ms_per_request": round(cpu / calls * 1000, 3),
                      "throughput_req_s": round(calls / total)}
    result.checks = {"all answered 200": statuses == Counter({200: calls}),
                     "within 10 s in total": total <= 10.0,
                     "RSS growth within 250 MB": peak - idle_rss <= 250 * 1000**2 / 1024**2}
    return result


async def run(args: argparse.Namespace) -> list[Result]:
    ci = args.mode == "ci"
    hanging, isolation_s, burst, steady_s = (60, 2.0, 60, 1.0) if ci else (args.hanging, 5.0, args.burst, 5.0)
    deepgram_limit = 20 if ci else 256
    limit = 20 if ci else args.limit
    with tempfile.TemporaryDirectory() as logs_dir:
        logs = Path(logs_dir)
        sim_port, gw_port = free_port(), free_port()
        with started("simulator", [sys.executable, "-m", "app", "simulate", "--port", str(sim_port)], sim_port,
                     "/_sim/faults", logs, env=clean_environment({})) as simulator:
            env = {**gateway_env(sim_port, args.env), "DEEPGRAM_MAX_CONCURRENCY": str(deepgram_limit),
                   "OPENAI_MAX_CONCURRENCY": str(limit)}
            connector = aiohttp.TCPConnector(limit=0)
            timeout = aiohttp.ClientTimeout(total=120)
            async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
                results = []
                if {"isolation", "overflow"} & set(args.only):
                    with started("gateway", [sys.executable, "-m", "app", "serve", "--port", str(gw_port)], gw_port,
                                 "/health/ready", logs, env=clean_environment(env)) as gateway:
                        await wait_ready(session, [simulator, gateway])
                        bench = Bench(simulator, gateway, session)
                        if "isolation" in args.only:
                            results.append(await isolation(bench, hanging, isolation_s, ci))
                        if "overflow" in args.only:
                            results.append(await overflow(bench, limit, burst, steady_s, ci))
                if not ci and "scale" in args.only:
                    env["OPENAI_MAX_CONCURRENCY"] = str(args.scale + 1000)
                    port = free_port()
                    with started("gateway-scale", [sys.executable, "-m", "app", "serve", "--port", str(port)], port,
                                 "/health/ready", logs, env=clean_environment(env)) as gateway:
                        await wait_ready(session, [simulator, gateway])
                        await asyncio.sleep(1.0)  # idle RSS after start-up settles
                        results.append(await scale(Bench(simulator, gateway, session), args.scale))
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=("full", "ci"), default="full")
    parser.add_argument("--hanging", type=int, default=600, help="hanging Deepgram calls (isolation)")
    parser.add_argument("--burst", type=int, default=300, help="chat calls at once (overflow)")
    parser.add_argument("--limit", type=int, default=100, help="OpenAI's P_MAX_CONCURRENCY (overflow)")
    parser.add_argument("--scale", type=int, default=5000, help="concurrent chat calls (scale)")
    parser.add_argument("--only", nargs="+", choices=("isolation", "overflow", "scale"),
                        default=["isolation", "overflow", "scale"], help="scenarios to run")
    parser.add_argument("--env", action="append", default=[], metavar="K=V", help="a setting for the gateway")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    results = asyncio.run(run(args))
    report = [{**asdict(r), "passed": r.passed} for r in results]
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
