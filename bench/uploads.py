"""Large speech-to-text uploads: the gateway's memory while many big files go through ``/v1/stt``.

It starts, as subprocesses on free loopback ports, the standalone simulator and the gateway
(``python -m app serve``, every provider pointed at the simulator, limits too high to refuse),
then for each scenario sends N concurrent uploads of one WAV file of the given size to
``/v1/stt`` (half ``hi-IN``, served by Sarvam as a multipart upload, half ``en-US``, served by
Deepgram as a raw body) and samples the gateway's resident memory every 20 ms. Only the gateway
process is measured; the simulator is another process. Every upload must be answered: a success,
or a documented error (``application/problem+json`` with a documented status and ``error_type``).
The gateway's spool directory must be empty afterwards.

    python bench/uploads.py                      # 10 x 40 MB, then 40 x 40 MB
    python bench/uploads.py --mode ci            # 4 x 8 MB (tests/hardening/test_uploads.py)
    python bench/uploads.py --gateway-dir DIR    # another checkout's gateway (an older commit, say)

The simulator always runs from this checkout, so that checkouts are compared against the same
upstream.

Exits 0 when every check passes (answers, memory bounds, empty spool), 1 otherwise; the results
are printed as JSON either way.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import wave
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from app.stack.processes import free_port
from bench.servers import ROOT, Server, clean_environment, started, wait_ready

DOCUMENTED = {(400, "invalid_input"), (408, "invalid_input"), (413, "invalid_input"), (415, "invalid_input"),
              (422, "invalid_input"), (422, "upstream_4xx"), (429, "rate_limited"),
              (429, "upstream_rate_limited"), (502, "upstream_5xx"), (502, "connection"),
              (502, "upstream_malformed"), (503, "circuit_open"), (503, "overloaded"), (504, "timeout")}
"""(status, error_type) answers DESIGN.md documents for ``/v1/stt``."""


@dataclass(frozen=True)
class Scenario:
    uploads: int
    size_mb: int
    max_rss_growth_mib: float


MODES = {
    "full": (Scenario(10, 40, 100), Scenario(40, 40, 200)),
    "ci": (Scenario(4, 8, 24),),
}


@dataclass
class Result:
    uploads: int
    size_mb: int
    max_rss_growth_mib: float
    answers: dict[str, int] = field(default_factory=dict)
    undocumented: list[str] = field(default_factory=list)
    seconds_per_upload: dict[str, float] = field(default_factory=dict)
    wall_seconds: float = 0.0
    rss_mib: dict[str, float] = field(default_factory=dict)
    spool_files_left: int = 0


def write_wav(path: Path, size_mb: int) -> None:
    """A WAV of about ``size_mb`` MiB: 48 kHz stereo 16-bit, so 40 MB lasts 218 s (under the
    default 300 s limit)."""
    pattern = bytes(range(256)) * 4096
    with wave.open(str(path), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(48000)
        for _ in range(size_mb):
            out.writeframes(pattern)


def spool_files(spool: Path) -> int:
    return sum(1 for p in spool.rglob("*") if p.is_file())


async def upload(session: aiohttp.ClientSession, url: str, audio: Path, language: str) -> tuple[str, float]:
    """One upload: its answer as ``"<status> <error_type>"`` (or ``"200"``) and its seconds."""
    started_at = time.perf_counter()
    with audio.open("rb") as file:
        form = aiohttp.FormData()
        form.add_field("language_code", language)
        form.add_field("file", file, filename=audio.name, content_type="audio/wav")
        try:
            async with session.post(url + "/v1/stt", data=form) as response:
                body = await response.read()
                status = response.status
                media_type = response.content_type
        except (aiohttp.ClientError, TimeoutError) as error:
            return f"lost {type(error).__name__}", time.perf_counter() - started_at
    elapsed = time.perf_counter() - started_at
    if status == 200:
        return "200", elapsed
    error_type = json.loads(body).get("error_type") if media_type == "application/problem+json" else None
    return f"{status} {error_type}", elapsed


async def scenario(session: aiohttp.ClientSession, gateway: Server, scratch: Path, spool: Path,
                   plan: Scenario, baseline: float) -> Result:
    """The uploads of ``plan`` at once; memory growth is counted from ``baseline`` (the gateway
    after its warm-up), so a scenario is not flattered by what an earlier one left allocated."""
    audio = scratch / f"speech-{plan.size_mb}mb.wav"
    if not audio.exists():
        write_wav(audio, plan.size_mb)
    result = Result(plan.uploads, plan.size_mb, plan.max_rss_growth_mib)
    peak = baseline
    done = asyncio.Event()

    async def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, gateway.rss_mib())
            await asyncio.sleep(0.02)

    sampler = asyncio.create_task(sample())
    started_at = time.perf_counter()
    answers = await asyncio.gather(*(upload(session, gateway.url, audio, "hi-IN" if i % 2 == 0 else "en-US")
                                     for i in range(plan.uploads)))
    result.wall_seconds = round(time.perf_counter() - started_at, 2)
    done.set()
    await sampler
    result.answers = dict(Counter(answer for answer, _ in answers))
    result.undocumented = [a for a in result.answers if a != "200" and
                           tuple(a.split(" ", 1)) not in {(str(s), t) for s, t in DOCUMENTED}]
    times = [seconds for _, seconds in answers]
    result.seconds_per_upload = {"median": round(statistics.median(times), 2), "max": round(max(times), 2)}
    result.rss_mib = {"baseline": round(baseline, 1), "peak": round(peak, 1), "growth": round(peak - baseline, 1)}
    result.spool_files_left = spool_files(spool)
    return result


def failures(results: list[Result]) -> list[str]:
    found = []
    for r in results:
        name = f"{r.uploads} x {r.size_mb} MB"
        if r.undocumented:
            found.append(f"{name}: undocumented or lost answers {r.undocumented}")
        if r.rss_mib["growth"] > r.max_rss_growth_mib:
            found.append(f"{name}: gateway RSS grew {r.rss_mib['growth']} MiB (bound {r.max_rss_growth_mib})")
        if r.spool_files_left:
            found.append(f"{name}: {r.spool_files_left} spooled files left behind")
    return found


async def run(plans: tuple[Scenario, ...], scratch: Path, gateway_dir: Path) -> list[Result]:
    logs, spool = scratch / "logs", scratch / "spool"
    logs.mkdir()
    sim_port, gw_port = free_port(), free_port()
    base = {"PYTHONPATH": str(gateway_dir), "PYTHONUNBUFFERED": "1"}
    sim_env = clean_environment({"PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"})
    sim_url = f"http://127.0.0.1:{sim_port}/_sim"
    gw_env = clean_environment({
        **base, "SARVAM_BASE_URL": sim_url + "/sarvam", "DEEPGRAM_BASE_URL": sim_url + "/deepgram",
        "OPENAI_BASE_URL": sim_url + "/openai/v1", "SARVAM_RATE_LIMIT": "1000000",
        "DEEPGRAM_RATE_LIMIT": "1000000", "SARVAM_TIMEOUT": "300", "DEEPGRAM_TIMEOUT": "300",
        "HEALTH_CHECK_INTERVAL": "3600", "ALERT_EVAL_INTERVAL": "3600", "UPLOAD_SPOOL_DIR": str(spool),
    })
    python = [sys.executable, "-m", "app"]
    with (started("simulator", [*python, "simulate", "--port", str(sim_port)], sim_port, "/_sim/faults", logs,
                  sim_env) as simulator,
          started("gateway", [*python, "serve", "--port", str(gw_port)], gw_port, "/health/live", logs, gw_env,
                  cwd=gateway_dir) as gateway):
        timeout = aiohttp.ClientTimeout(total=600)
        async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=0)) as session:
            await wait_ready(session, [simulator, gateway])
            warm_up = Scenario(2, 2, 0)  # imports, connection pools, the first spool, both providers
            await scenario(session, gateway, scratch, spool, warm_up, gateway.rss_mib())
            await asyncio.sleep(1.0)
            baseline = gateway.rss_mib()
            return [await scenario(session, gateway, scratch, spool, plan, baseline) for plan in plans]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=sorted(MODES), default="full")
    parser.add_argument("--gateway-dir", type=Path, default=ROOT, help="the checkout whose gateway is measured")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="uploads-") as scratch:
        results = asyncio.run(run(MODES[args.mode], Path(scratch), args.gateway_dir.resolve()))
    found = failures(results)
    report = json.dumps({"mode": args.mode, "scenarios": [asdict(r) for r in results], "failures": found}, indent=2)
    print(report)
    if args.json:
        args.json.write_text(report + "\n")
    for failure in found:
        print(f"FAIL: {failure}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
