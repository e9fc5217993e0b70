"""A bounded load test: fixed concurrency against a real gateway with faults injected upstream.

It starts, as subprocesses on free loopback ports, the standalone simulator
(``python -m app simulate``) and the gateway (``python -m app serve``, production logging) with
every provider pointed at the simulator, injects faults in about one upstream call in ten
(5xx, malformed bodies, slow answers, on every operation), then keeps ``--concurrency`` callers
busy for ``--seconds`` with a mix of every ``/v1`` endpoint (streamed TTS and chat read to the
end). Every request must end in a success or a documented error (an ``application/problem+json``
answer with a documented status and ``error_type``); a transport error, a timeout or anything
else counts as lost. The gateway's resident memory is sampled after the warm-up and at the end:
it must stay flat.

    python bench/load.py --mode ci      # 30 s, the suite runs it (tests/hardening/test_load.py)
    python bench/load.py                # full: 5 minutes
    python bench/load.py --json out.json --seconds 120 --concurrency 64

Exits 0 when every check passes, 1 otherwise; the results are printed as JSON either way.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import itertools
import json
import math
import sys
import tempfile
import time
import wave
from collections import Counter
from collections.abc import Mapping
from contextlib import AbstractContextManager, ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from app.stack.processes import free_port
from bench.servers import ROOT, Server, clean_environment, started, wait_ready

DOCUMENTED = {
    400: {"invalid_input"}, 413: {"invalid_input"}, 415: {"invalid_input"}, 422: {"invalid_input", "upstream_4xx"},
    429: {"rate_limited", "upstream_rate_limited"}, 502: {"upstream_5xx", "connection", "upstream_malformed", "auth"},
    503: {"circuit_open", "overloaded"}, 504: {"timeout"},
}
FAULTS: list[dict[str, Any]] = [
    {"provider": "sarvam", "operation": "translate", "error_rate": 0.1, "status_code": 500},
    {"provider": "sarvam", "operation": "tts", "error_rate": 0.1, "status_code": 503, "chunk_delay_ms": 5},
    {"provider": "sarvam", "operation": "stt", "error_rate": 0.1, "status_code": 502, "latency_ms": 30},
    {"provider": "deepgram", "operation": "stt", "error_rate": 0.1, "status_code": 500},
    {"provider": "deepgram", "operation": "tts", "error_rate": 0.1, "status_code": 500},
    {"provider": "openai", "operation": "chat", "error_rate": 0.1, "status_code": 500, "latency_ms": 20},
    {"provider": "openai", "operation": "embeddings", "error_rate": 0.1, "status_code": 400},
]
UNLIMITED = str(10**9)


@dataclass(frozen=True)
class Mode:
    seconds: float
    warmup: float
    concurrency: int
    max_rss_growth_mib: float
    """Allowed growth of the gateway's RSS between the end of the warm-up and the end."""


MODES = {"ci": Mode(30.0, 8.0, 32, 16.0), "full": Mode(300.0, 30.0, 32, 16.0)}


@dataclass
class Results:
    mode: str
    seconds: float
    concurrency: int
    requests: int = 0
    successes: int = 0
    documented_errors: dict[str, int] = field(default_factory=dict)
    """``status error_type``: count."""
    undocumented: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    by_endpoint: dict[str, dict[str, int]] = field(default_factory=dict)
    latency_ms: dict[str, float] = field(default_factory=dict)
    rps: float = 0.0
    rss_mib: dict[str, float] = field(default_factory=dict)
    """Gateway RSS: ``start`` (after warm-up), ``end``, ``max`` and ``growth``."""
    max_rss_growth_mib: float = 0.0
    failures: list[str] = field(default_factory=list)

    def check(self) -> None:
        if self.requests == 0:
            self.failures.append("no request was made")
        if self.lost:
            self.failures.append(f"{len(self.lost)} requests lost (no answer): {self.lost[:5]}")
        if self.undocumented:
            self.failures.append(f"{len(self.undocumented)} undocumented answers: {self.undocumented[:5]}")
        if self.successes + sum(self.documented_errors.values()) != self.requests:
            self.failures.append("answers do not add up to requests")
        if self.successes < self.requests * 0.7:
            self.failures.append(f"only {self.successes} of {self.requests} succeeded")
        if not self.documented_errors:
            self.failures.append("no injected fault reached a caller: the faults did not apply")
        if self.rss_mib.get("growth", math.inf) > self.max_rss_growth_mib:
            self.failures.append(f"gateway memory grew {self.rss_mib.get('growth')} MiB "
                                 f"(bound {self.max_rss_growth_mib} MiB)")


# -- the processes -------------------------------------------------------------------------------

def app_server(
    name: str, command: str, ready_path: str, env: Mapping[str, str], logs: Path,
) -> AbstractContextManager[Server]:
    """``python -m app <command>`` on a free port, with ``env`` and no other gateway setting."""
    port = free_port()
    return started(name, [sys.executable, "-m", "app", command, "--port", str(port)], port, ready_path, logs,
                   clean_environment({**env, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}))


# -- the traffic ---------------------------------------------------------------------------------

def speech() -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(b"".join(int(3000 * math.sin(i / 10)).to_bytes(2, "little", signed=True)
                                 for i in range(8000)))
    return buffer.getvalue()


AUDIO = speech()
MIX: list[tuple[str, str, dict[str, Any] | None]] = [  # (name, path, JSON body); None: an STT upload
    ("translate", "/v1/translate", {"input": "Hello, how are you today?", "source_language_code": "en-IN",
                                    "target_language_code": "hi-IN"}),
    ("tts sarvam", "/v1/tts", {"text": "Namaste, aap kaise hain?", "language_code": "hi-IN"}),
    ("tts deepgram", "/v1/tts", {"text": "Hello there.", "language_code": "en-US", "provider": "deepgram"}),
    ("stt", "/v1/stt", None),
    ("chat", "/v1/chat/completions", {"messages": [{"role": "user", "content": "Say hello."}]}),
    ("chat stream", "/v1/chat/completions", {"messages": [{"role": "user", "content": "Say hello."}],
                                             "stream": True}),
    ("embeddings", "/v1/embeddings", {"model": "text-embedding-3-small", "input": ["one", "two"]}),
    ("rag query", "/v1/rag/query", {"query": "Which city is the capital of India?"}),
]


async def one(session: aiohttp.ClientSession, base: str, name: str, path: str, body: dict[str, Any] | None,
              results: Results, latencies: list[float]) -> None:
    started = time.perf_counter()
    counts = results.by_endpoint.setdefault(name, Counter())
    try:
        if body is None:
            form = aiohttp.FormData()
            form.add_field("file", AUDIO, filename="a.wav", content_type="audio/wav")
            form.add_field("language_code", "hi-IN")
            request = session.post(base + path, data=form)
        else:
            request = session.post(base + path, json=body)
        async with request as response:
            payload = await response.read()  # streams to the end
            status, content_type = response.status, response.headers.get("content-type", "")
    except (aiohttp.ClientError, TimeoutError) as error:
        results.lost.append(f"{name}: {type(error).__name__}: {error}"[:200])
        counts["lost"] += 1
        return
    latencies.append(time.perf_counter() - started)
    if status == 200:
        results.successes += 1
        counts["200"] += 1
        return
    error_type = ""
    if content_type.startswith("application/problem+json"):
        error_type = str(json.loads(payload).get("error_type", ""))
    if error_type in DOCUMENTED.get(status, set()):
        key = f"{status} {error_type}"
        results.documented_errors[key] = results.documented_errors.get(key, 0) + 1
        counts[key] += 1
    else:
        results.undocumented.append(f"{name}: {status} {content_type} {payload[:200]!r}")
        counts[f"{status} undocumented"] += 1


async def traffic(base: str, mode: Mode, results: Results, gateway: Server) -> None:
    latencies: list[float] = []
    stop_at = time.monotonic() + mode.seconds
    mix = itertools.cycle(MIX)
    rss: list[float] = []

    async def worker(session: aiohttp.ClientSession) -> None:
        while time.monotonic() < stop_at:
            name, path, body = next(mix)
            results.requests += 1
            await one(session, base, name, path, body, results, latencies)

    async def sample() -> None:
        await asyncio.sleep(mode.warmup)
        while time.monotonic() < stop_at:
            rss.append(gateway.rss_mib())
            await asyncio.sleep(1.0)

    timeout = aiohttp.ClientTimeout(total=60)
    connector = aiohttp.TCPConnector(limit=mode.concurrency)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        began = time.monotonic()
        await asyncio.gather(sample(), *(worker(session) for _ in range(mode.concurrency)))
        results.rps = round(results.requests / (time.monotonic() - began), 1)
    rss.append(gateway.rss_mib())
    ordered = sorted(latencies)
    if ordered:
        results.latency_ms = {f"p{q}": round(ordered[min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1)]
                                             * 1000, 1) for q in (50, 95, 99)}
    # The first sample after the warm-up against the median of the last five: one GC-timed
    # sample does not decide.
    tail = sorted(rss[-5:])[len(rss[-5:]) // 2]
    results.rss_mib = {"start": round(rss[0], 1), "end": round(tail, 1), "max": round(max(rss), 1),
                       "growth": round(tail - rss[0], 1)}


async def run(mode: Mode, name: str, logs: Path) -> Results:
    results = Results(name, mode.seconds, mode.concurrency, max_rss_growth_mib=mode.max_rss_growth_mib)
    with ExitStack() as stack:
        sim = stack.enter_context(app_server("simulator", "simulate", "/_sim/faults", {}, logs))
        base = sim.url + "/_sim"
        env = {"SARVAM_BASE_URL": base + "/sarvam", "DEEPGRAM_BASE_URL": base + "/deepgram",
               "OPENAI_BASE_URL": base + "/openai/v1", "ENVIRONMENT": "production", "LOG_LEVEL": "warning",
               "RATE_LIMIT_WINDOW": "1s", "HEALTH_CHECK_INTERVAL": "30", "ALERT_EVAL_INTERVAL": "5",
               "SARVAM_TIMEOUT": "10", "DEEPGRAM_TIMEOUT": "10", "OPENAI_TIMEOUT": "10",
               **{f"{p}_RATE_LIMIT": UNLIMITED for p in ("SARVAM", "DEEPGRAM", "OPENAI", "RAG")}}
        gateway = stack.enter_context(app_server("gateway", "serve", "/health/live", env, logs))
        async with aiohttp.ClientSession() as control:
            await wait_ready(control, [sim, gateway], timeout=30)
            for fault in FAULTS:
                async with control.put(base + "/faults", json=fault) as response:
                    response.raise_for_status()
            async with control.post(gateway.url + "/v1/rag/documents", json={"documents": [
                    {"id": "delhi", "text": "New Delhi is the capital of India."},
                    {"id": "mumbai", "text": "Mumbai is the financial capital of India."}]}) as response:
                response.raise_for_status()
        await traffic(gateway.url, mode, results, gateway)
        if gateway.process.poll() is not None:
            results.failures.append(f"the gateway exited ({gateway.process.returncode})")
    results.by_endpoint = {k: dict(v) for k, v in results.by_endpoint.items()}
    results.check()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=sorted(MODES), default="full")
    parser.add_argument("--seconds", type=float, help="override the mode's duration")
    parser.add_argument("--concurrency", type=int, help="override the mode's concurrency (32)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--logs", type=Path, help="keep the servers' logs here")
    args = parser.parse_args(argv)
    mode = MODES[args.mode]
    mode = Mode(args.seconds or mode.seconds, min(mode.warmup, (args.seconds or mode.seconds) / 3),
                args.concurrency or mode.concurrency, mode.max_rss_growth_mib)
    with tempfile.TemporaryDirectory(prefix="load-") as scratch:
        logs = args.logs or Path(scratch)
        logs.mkdir(parents=True, exist_ok=True)
        results = asyncio.run(run(mode, args.mode, logs))
    report = json.dumps(asdict(results), indent=2)
    print(report)
    if args.json:
        args.json.write_text(report + "\n")
    for failure in results.failures:
        print(f"FAIL: {failure}", file=sys.stderr)
    return 1 if results.failures else 0


if __name__ == "__main__":
    sys.exit(main())
