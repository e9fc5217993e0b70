"""What the gateway costs: added latency and throughput against the simulator and a bare proxy.

One run starts, as subprocesses on free loopback ports: the standalone simulator
(``python -m app simulate``), the gateway in its production profile with telemetry on
(``ENABLE_METRICS=true``), the same gateway with telemetry off (``OTEL_SDK_DISABLED=true``,
``ENABLE_METRICS=false``), and the bare Litestar proxy of ``bench/bare_proxy.py``. Both gateways
and the bare proxy call the same simulator; every provider rate limit is set so high that it
never rejects, so the whole pipeline runs on every call. Then it measures, with an aiohttp client
in this process:

(a) sequential calls of ``/v1/translate`` and ``/v1/chat/completions``: median, p90 and p99
    latency of each server and of the simulator called directly, interleaved round-robin (the
    order rotating every round) so that drift hits all of them alike; "added" is the difference
    to the direct call;
(b) throughput of ``/v1/translate`` at 32 concurrent requests for a fixed time, in rounds whose
    order alternates, with each process's CPU time per request (from ``/proc``);
(c) the cost of telemetry: the telemetry-on gateway against the telemetry-off one.

It prints every number, the ratios and PASS/FAIL against the targets of issue 3, and exits 0
even when a target misses (it is a report) unless ``--strict``; it exits 1 when any request
failed, since then the numbers mean nothing. The machine's cores are shared by the client, the
servers and the simulator and nothing is pinned: on a 2-core machine the numbers include that
contention and move with whatever else runs there (the load average is printed). Requests per
second move most; CPU time per request is the steadier figure, and its ratio is what the
throughput ratio tends to when each server has a core to itself.

``--profile DIR`` afterwards loads each gateway and the bare proxy again, one at a time, under
``py-spy record`` (not a project dependency: ``pip install py-spy``) and prints where their CPU
time goes; the raw collapsed stacks are left in DIR (``<server>.collapsed.txt``, for a flame
graph). Profiling slows the servers down: the throughput printed with a profile is not a result.

    python bench/overhead.py              # full run, a few minutes
    python bench/overhead.py --quick      # a smoke run, well under a minute
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import shutil
import statistics
import sys
import sysconfig
import tempfile
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from app.stack.processes import free_port
from bench.servers import ROOT, Server, clean_environment, started, wait_ready

MEDIAN_ADDED_MS_TARGET = 1.5
THROUGHPUT_RATIO_TARGET = 0.75
UNLIMITED = str(10**9)
SIM_KEY = "bench-overhead"
STDLIB = sysconfig.get_paths()["stdlib"]
PROFILED = ("gateway", "gateway-notel", "bare-proxy")


@dataclass(frozen=True)
class Endpoint:
    """One gateway endpoint and the simulator route it ends up calling."""

    name: str
    path: str
    direct_path: str
    direct_headers: Mapping[str, str]
    body: bytes


ENDPOINTS = (
    Endpoint("translate", "/v1/translate", "/_sim/sarvam/translate", {"api-subscription-key": SIM_KEY},
             json.dumps({"input": "Hello, how are you today?", "source_language_code": "en-IN",
                         "target_language_code": "hi-IN"}).encode()),
    Endpoint("chat", "/v1/chat/completions", "/_sim/openai/v1/chat/completions",
             {"authorization": f"Bearer {SIM_KEY}"},
             json.dumps({"model": "gpt-4o-mini",
                         "messages": [{"role": "user", "content": "Say hello in Hindi."}]}).encode()),
)
THROUGHPUT_ENDPOINT = ENDPOINTS[0]


def request(server: Server, endpoint: Endpoint) -> tuple[str, dict[str, str]]:
    """The URL and headers of ``endpoint`` on ``server`` (its simulator route on the simulator)."""
    headers = {"content-type": "application/json"}
    if server.direct:
        return server.url + endpoint.direct_path, {**headers, **endpoint.direct_headers}
    return server.url + endpoint.path, headers


@dataclass(frozen=True)
class Mode:
    """How long each phase runs."""

    name: str
    sequential: int
    """Measured sequential calls per endpoint and server."""
    warmup: int
    """Sequential calls per endpoint and server before measuring."""
    seconds: float
    """Length of one throughput run."""
    rounds: int
    """Throughput runs per server, in alternating order."""
    concurrency: int = 32


FULL = Mode("full", sequential=2000, warmup=300, seconds=8.0, rounds=3)
QUICK = Mode("quick", sequential=150, warmup=30, seconds=1.5, rounds=1)


@dataclass
class LatencyStats:
    count: int
    median_ms: float
    p90_ms: float
    p99_ms: float

    @classmethod
    def of(cls, samples: Sequence[float]) -> LatencyStats:
        ordered = sorted(samples)
        return cls(len(ordered), statistics.median(ordered), _quantile(ordered, 0.90), _quantile(ordered, 0.99))


@dataclass
class ThroughputRun:
    ok: int
    errors: int
    seconds: float
    cpu_ms_per_request: dict[str, float]
    """CPU milliseconds per successful request, per process (``client`` is this benchmark)."""

    @property
    def rps(self) -> float:
        return self.ok / self.seconds


@dataclass
class Results:
    mode: str
    cpus: int
    python: str
    load_before: tuple[float, float, float] = (0.0, 0.0, 0.0)
    """The machine's 1, 5 and 15 minute load averages when the run started (others' work skews it)."""
    load_after: tuple[float, float, float] = (0.0, 0.0, 0.0)
    latency: dict[str, dict[str, LatencyStats]] = field(default_factory=dict)
    """Per endpoint, per server."""
    throughput: dict[str, list[ThroughputRun]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def added(self, endpoint: str, server: str, stat: str = "median_ms") -> float:
        stats = self.latency[endpoint]
        return float(getattr(stats[server], stat) - getattr(stats["simulator"], stat))

    def rps(self, server: str) -> float:
        runs = self.throughput[server]
        return sum(r.ok for r in runs) / sum(r.seconds for r in runs)

    def cpu_ms(self, server: str, process: str) -> float:
        runs = self.throughput[server]
        return sum(r.cpu_ms_per_request[process] * r.ok for r in runs) / max(1, sum(r.ok for r in runs))


def _quantile(ordered: Sequence[float], q: float) -> float:
    """The nearest-rank quantile (p99 of 2,000 samples is the 1,980th)."""
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def gateway_env(simulator: str, telemetry: bool) -> dict[str, str]:
    """The production profile pointed at the standalone simulator, with limits that never bite."""
    env = clean_environment({
        "ENVIRONMENT": "production",
        "SARVAM_BASE_URL": f"{simulator}/_sim/sarvam",
        "DEEPGRAM_BASE_URL": f"{simulator}/_sim/deepgram",
        "OPENAI_BASE_URL": f"{simulator}/_sim/openai/v1",
        "ENABLE_METRICS": "true" if telemetry else "false",
    })
    for provider in ("SARVAM", "DEEPGRAM", "OPENAI", "RAG"):
        env[f"{provider}_RATE_LIMIT"] = UNLIMITED
    if not telemetry:
        env["OTEL_SDK_DISABLED"] = "true"
    return env


async def post(session: aiohttp.ClientSession, url: str, headers: Mapping[str, str], body: bytes,
               errors: list[str]) -> bool:
    async with session.post(url, data=body, headers=headers) as response:
        payload = await response.read()
        if response.status == 200:
            return True
        if len(errors) < 10:
            errors.append(f"{url}: HTTP {response.status} {payload[:200]!r}")
        return False


async def sequential(session: aiohttp.ClientSession, servers: Sequence[Server], endpoint: Endpoint,
                     mode: Mode, errors: list[str]) -> dict[str, LatencyStats]:
    """Round-robin sequential calls, the order rotating each round; the first rounds warm up."""
    samples: dict[str, list[float]] = {s.name: [] for s in servers}
    requests = [(s.name, *request(s, endpoint)) for s in servers]
    for i in range(mode.warmup + mode.sequential):
        k = i % len(requests)
        for name, url, headers in requests[k:] + requests[:k]:
            started_ns = time.perf_counter_ns()
            await post(session, url, headers, endpoint.body, errors)
            if i >= mode.warmup:
                samples[name].append((time.perf_counter_ns() - started_ns) / 1e6)
    return {name: LatencyStats.of(values) for name, values in samples.items()}


async def load(session: aiohttp.ClientSession, target: Server, servers: Sequence[Server], seconds: float,
               concurrency: int, errors: list[str]) -> ThroughputRun:
    """``concurrency`` callers in a loop on ``target`` for ``seconds``; CPU time of every process."""
    url, headers = request(target, THROUGHPUT_ENDPOINT)
    body = THROUGHPUT_ENDPOINT.body
    ok = failed = 0

    async def caller(deadline: float) -> None:
        nonlocal ok, failed
        while time.perf_counter() < deadline:
            if await post(session, url, headers, body, errors):
                ok += 1
            else:
                failed += 1

    cpu_before = {s.name: s.cpu_seconds() for s in servers} | {"client": time.process_time()}
    start = time.perf_counter()
    await asyncio.gather(*(caller(start + seconds) for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    cpu_after = {s.name: s.cpu_seconds() for s in servers} | {"client": time.process_time()}
    return ThroughputRun(ok, failed, elapsed,
                         {n: (cpu_after[n] - cpu_before[n]) * 1000 / max(1, ok) for n in cpu_before})


async def measure(servers: Sequence[Server], mode: Mode, results: Results) -> None:
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as session:
        await wait_ready(session, servers)
        for endpoint in ENDPOINTS:
            results.latency[endpoint.name] = await sequential(session, servers, endpoint, mode, results.errors)
        targets = [s for s in servers if s.name != "simulator"] + [s for s in servers if s.name == "simulator"]
        for target in targets:  # warm every server's pools up to the concurrency
            await load(session, target, servers, min(2.0, mode.seconds), mode.concurrency, results.errors)
        for round_ in range(mode.rounds):
            for target in targets if round_ % 2 == 0 else targets[::-1]:
                run = await load(session, target, servers, mode.seconds, mode.concurrency, results.errors)
                results.throughput.setdefault(target.name, []).append(run)


async def profile(server: Server, servers: Sequence[Server], seconds: float, concurrency: int,
                  out: Path) -> str:
    """Load ``server`` under ``py-spy record`` and summarise where its CPU time went."""
    spy = shutil.which("py-spy")
    if spy is None:
        raise RuntimeError("--profile needs py-spy: pip install py-spy")
    out.mkdir(parents=True, exist_ok=True)
    raw = out / f"{server.name}.collapsed.txt"
    # --gil: only samples holding the GIL, i.e. Python CPU time (idle pool threads look busy otherwise).
    record = await asyncio.create_subprocess_exec(
        spy, "record", "--pid", str(server.process.pid), "--rate", "250", "--format", "raw", "--gil",
        "--full-filenames", "--output", str(raw), "--duration", str(math.ceil(seconds)),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    await asyncio.sleep(1.0)  # py-spy attaches
    errors: list[str] = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        run = await load(session, server, servers, seconds, concurrency, errors)
    _, stderr = await record.communicate()
    if record.returncode != 0 or not raw.exists():
        raise RuntimeError(f"py-spy failed: {stderr.decode(errors='replace')}")
    if errors:
        raise RuntimeError("requests failed while profiling:\n" + "\n".join(errors))
    return summarise_profile(server.name, raw.read_text(), run)


def _frame(frame: str) -> tuple[str, str | None]:
    """``function (/full/path.py:line)`` -> (``function (short/path.py)``, its package), where the
    package is ``None`` for the standard library and ``app/<area>`` for our own code."""
    name, _, where = frame.partition(" (")
    path = where.rsplit(":", 1)[0]
    if "site-packages/" in path:
        short = path.split("site-packages/", 1)[1]
        dirs = short.split("/")[:-1] or [short.removesuffix(".py")]
        return f"{name} ({short})", "/".join(dirs[:3] if dirs[0] == "opentelemetry" else dirs[:1])
    if path.startswith(f"{ROOT}/"):
        short = path[len(str(ROOT)) + 1:]
        return f"{name} ({short})", "/".join(short.split("/")[:2]).removesuffix(".py")
    return f"{name} ({path.split(STDLIB + '/', 1)[-1]})", None


def summarise_profile(name: str, collapsed: str, run: ThroughputRun, top: int = 20) -> str:
    """Where the GIL-holding samples were: per package (time in the standard library charged to the
    package that called it), per function (self time) and per function of ``app/`` (inclusive)."""
    packages: Counter[str] = Counter()
    self_time: Counter[str] = Counter()
    ours: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame(f) for f in stack.split(";") if f]
        total += count
        self_time[frames[-1][0]] += count
        packages[next((p for _, p in reversed(frames) if p is not None), "python (stdlib only)")] += count
        for key in {k for k, p in frames if p is not None and p.startswith("app")}:
            ours[key] += count
    if total == 0:
        return f"{name}: py-spy recorded no samples"
    cpu = run.cpu_ms_per_request.get(name, 0.0)

    def rows(counter: Counter[str], n: int) -> list[str]:
        return [f"    {100 * c / total:5.1f}%  {cpu * c / total:6.3f} ms  {key}" for key, c in counter.most_common(n)]

    return "\n".join([
        f"{name} under py-spy: {run.rps:.0f} req/s, {cpu:.3f} ms CPU per request, {total} samples holding the GIL",
        "  (share of samples, and that share of the CPU time per request)",
        "  by package (standard library time charged to the package that called it):", *rows(packages, 14),
        f"  by function, self time (top {top}):", *rows(self_time, top),
        *([f"  app/ functions, inclusive time (top {top}):", *rows(ours, top)] if ours else []),
    ])


def report(results: Results, mode: Mode) -> tuple[str, bool]:
    """The printed report and whether every target passed."""
    out = [(f"Gateway overhead ({mode.name} mode): {mode.sequential} sequential calls per endpoint and server "
            f"after {mode.warmup} warm-up calls; {mode.concurrency} concurrent /v1/translate for "
            f"{mode.rounds} x {mode.seconds:g} s per server"),
           (f"machine: {results.cpus} CPUs shared by the client, both gateways, the bare proxy and the "
            f"simulator (nothing pinned); Python {results.python}"),
           (f"load average (1/5/15 min) before: {'/'.join(f'{x:.2f}' for x in results.load_before)}, "
            f"after: {'/'.join(f'{x:.2f}' for x in results.load_after)}"), ""]
    out.append(f"{'sequential latency (ms)':<36}{'median':>8}{'p90':>8}{'p99':>8}{'added median':>14}"
               f"{'added p99':>11}")
    for endpoint, stats in results.latency.items():
        for server, s in stats.items():
            added = "" if server == "simulator" else (
                f"{results.added(endpoint, server):>+14.3f}{results.added(endpoint, server, 'p99_ms'):>+11.3f}")
            out.append(f"  {endpoint:<10}{server:<24}{s.median_ms:>8.3f}{s.p90_ms:>8.3f}{s.p99_ms:>8.3f}{added}")
    processes = ["client", *results.throughput]
    out += ["", f"{'throughput, 32 concurrent':<28}{'req/s':>8}  {'rounds':<20}CPU ms per request: "
            + " ".join(f"{p:>13}" for p in processes)]
    for server, runs in results.throughput.items():
        rounds = "/".join(f"{r.rps:.0f}" for r in runs)
        cpu = " ".join(f"{results.cpu_ms(server, p):>13.3f}" for p in processes)
        out.append(f"  {server:<26}{results.rps(server):>8.0f}  {rounds:<20}{'':<20}{cpu}")

    gateway, bare = results.rps("gateway"), results.rps("bare-proxy")
    notel = results.rps("gateway-notel")
    cpu_on, cpu_off = results.cpu_ms("gateway", "gateway"), results.cpu_ms("gateway-notel", "gateway-notel")
    cpu_bare = results.cpu_ms("bare-proxy", "bare-proxy")
    ratios = [
        ("gateway / bare proxy throughput", f"{gateway / bare:.3f}"),
        ("gateway (telemetry off) / bare proxy throughput", f"{notel / bare:.3f}"),
        ("telemetry on / off throughput", f"{gateway / notel:.3f}"),
        ("telemetry cost, gateway CPU per request", f"{cpu_on - cpu_off:+.3f} ms"),
        *((f"telemetry cost, median latency {endpoint}",
           f"{results.added(endpoint, 'gateway') - results.added(endpoint, 'gateway-notel'):+.3f} ms")
          for endpoint in results.latency),
        ("bare proxy / gateway CPU per request", (f"{cpu_bare / cpu_on:.3f} (the throughput ratio if each had a "
                                                 "core to itself)")),
        ("bare proxy / gateway (telemetry off) CPU per request", f"{cpu_bare / cpu_off:.3f}"),
        ("simulator direct / gateway throughput", (f"{results.rps('simulator') / gateway:.2f} (the load client's "
                                                  "headroom)")),
    ]
    out += ["", "ratios", *(f"  {label + ':':<54}{value}" for label, value in ratios), ""]

    checks = [(f"median added latency {endpoint:<10}", results.added(endpoint, "gateway"),
               f"<= {MEDIAN_ADDED_MS_TARGET} ms", results.added(endpoint, "gateway") <= MEDIAN_ADDED_MS_TARGET,
               "ms") for endpoint in results.latency]
    checks.append(("throughput vs bare proxy     ", gateway / bare, f">= {THROUGHPUT_RATIO_TARGET}",
                   gateway / bare >= THROUGHPUT_RATIO_TARGET, ""))
    out.append("targets (issue 3; the gateway with telemetry on)")
    out += [f"  {label} {value:8.3f} {unit:<3}{target:<12}{'PASS' if passed else 'FAIL'}"
            for label, value, target, passed, unit in checks]
    return "\n".join(out), all(c[3] for c in checks)


def to_json(results: Results) -> dict[str, Any]:
    data = asdict(results)
    data["ratios"] = {
        "throughput_gateway_vs_bare": results.rps("gateway") / results.rps("bare-proxy"),
        "throughput_gateway_notel_vs_bare": results.rps("gateway-notel") / results.rps("bare-proxy"),
        "throughput_telemetry_on_vs_off": results.rps("gateway") / results.rps("gateway-notel"),
        "cpu_per_request_bare_vs_gateway": (results.cpu_ms("bare-proxy", "bare-proxy")
                                            / results.cpu_ms("gateway", "gateway")),
        "cpu_per_request_bare_vs_gateway_notel": (results.cpu_ms("bare-proxy", "bare-proxy")
                                                  / results.cpu_ms("gateway-notel", "gateway-notel")),
    }
    data["rps"] = {server: results.rps(server) for server in results.throughput}
    data["added_ms"] = {e: {s: {"median": results.added(e, s), "p99": results.added(e, s, "p99_ms")}
                            for s in stats if s != "simulator"} for e, stats in results.latency.items()}
    return data


def run(mode: Mode, profile_dir: Path | None, extra_env: Mapping[str, str]) -> tuple[Results, str | None]:
    results = Results(mode.name, os.cpu_count() or 0, platform.python_version(), os.getloadavg())
    ports = {name: free_port() for name in ("simulator", "gateway", "gateway-notel", "bare-proxy")}
    simulator = f"http://127.0.0.1:{ports['simulator']}"
    python = sys.executable
    with tempfile.TemporaryDirectory(prefix="bench-overhead-") as tmp, ExitStack() as stack:
        logs = Path(tmp)
        servers = [
            stack.enter_context(started("simulator", [python, "-m", "app", "simulate", "--port",
                                                      str(ports["simulator"])],
                                        ports["simulator"], "/", logs, direct=True)),
            stack.enter_context(started("gateway", [python, "-m", "app", "serve", "--port", str(ports["gateway"])],
                                        ports["gateway"], "/health/live", logs,
                                        {**gateway_env(simulator, True), **extra_env})),
            stack.enter_context(started("gateway-notel", [python, "-m", "app", "serve", "--port",
                                                          str(ports["gateway-notel"])],
                                        ports["gateway-notel"], "/health/live", logs,
                                        {**extra_env, **gateway_env(simulator, False)})),
            stack.enter_context(started("bare-proxy", [python, str(ROOT / "bench" / "bare_proxy.py"), "--port",
                                                       str(ports["bare-proxy"]), "--upstream", simulator],
                                        ports["bare-proxy"], "/health", logs)),
        ]
        uvloop.run(measure(servers, mode, results))
        results.load_after = os.getloadavg()
        summary = None
        if profile_dir is not None:
            summary = "\n\n".join(
                uvloop.run(profile(server, servers, max(5.0, mode.seconds), mode.concurrency, profile_dir))
                for server in servers if server.name in PROFILED)
    return results, summary


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Gateway overhead: added latency, throughput, telemetry cost")
    parser.add_argument("--quick", action="store_true", help="a short smoke run (well under a minute)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target misses")
    parser.add_argument("--json", type=Path, help="also write every number to this file")
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="afterwards, profile the gateways and the bare proxy under load with py-spy; "
                             "stacks go to DIR")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                        help="an extra variable for both gateways, e.g. OTEL_TRACES_SAMPLER=traceidratio "
                             "(repeatable; the telemetry-off gateway keeps OTEL_SDK_DISABLED=true)")
    args = parser.parse_args(argv)
    mode = QUICK if args.quick else FULL
    extra_env = dict(pair.split("=", 1) for pair in args.env if "=" in pair)
    if len(extra_env) != len(args.env):
        parser.error("--env takes KEY=VALUE")
    results, profile_summary = run(mode, args.profile, extra_env)
    if extra_env:
        print("extra gateway environment:", " ".join(f"{k}={v}" for k, v in extra_env.items()))
    if results.errors:
        print("requests failed; the numbers are meaningless:", *results.errors, sep="\n  ", file=sys.stderr)
        return 1
    text, passed = report(results, mode)
    print(text)
    if profile_summary:
        print("", profile_summary, sep="\n")
    if args.json:
        args.json.write_text(json.dumps(to_json(results), indent=2))
    return 1 if args.strict and not passed else 0


if __name__ == "__main__":
    sys.exit(main())
