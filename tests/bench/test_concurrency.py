"""The concurrency benchmark's CI mode: the isolation and overflow properties through real
subprocesses (standalone simulator, production-profile gateway), not the timings."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.stack

ROOT = Path(__file__).resolve().parents[2]


def test_a_hanging_provider_is_isolated_and_overflow_is_refused_at_once(tmp_path: Path) -> None:
    out = tmp_path / "concurrency.json"
    run = subprocess.run([sys.executable, "bench/concurrency.py", "--mode", "ci", "--json", str(out)],
                         check=False, cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert out.exists(), run.stderr[-3000:]
    results = {r["name"]: r for r in json.loads(out.read_text())}
    assert run.returncode == 0, json.dumps(results, indent=2)
    isolation, overflow = results["isolation"]["figures"], results["overflow"]["figures"]
    assert isolation["deepgram_in_flight"] == 20
    assert isolation["deepgram_refused"] == {"503 overloaded": 40}
    assert isolation["chat_calls"] > 50 and isolation["chat_statuses"] == {"200": isolation["chat_calls"]}
    assert overflow["burst_refused"] == 40 and overflow["steady_refusals"] > 50
    assert all(results[name]["checks"] and results[name]["passed"] for name in ("isolation", "overflow"))


def test_memory_per_call_in_flight_is_measured_and_taken_apart() -> None:
    run = subprocess.run([sys.executable, "bench/inflight.py", "--calls", "60", "--breakdown", "--top", "40"],
                         check=False, cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout)
    assert result["calls"] == 60 and result["held_rss_mib"] > result["idle_rss_mib"] > 0
    held = result["bytes_per_call"]
    # Each call held open has its own upstream connection (aiohttp), its own incoming one
    # (uvicorn) and its spans (the OpenTelemetry SDK), so each of them holds memory per call.
    assert held["aiohttp"] > 1000 and held["uvicorn/protocols"] > 1000 and held["opentelemetry/sdk"] > 1000
    assert 0 < result["traced_kib_per_call"] < 1000
