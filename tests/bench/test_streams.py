"""``bench/streams.py`` bounded: two rounds of 20 paced sessions through the gateway and 20 direct
for 3 s, as subprocesses on loopback. It proves the benchmark works end to end (every session gets every
result on both sides, every bulkhead slot is returned, each figure is finite and sane); the speed
targets are the full run's (bench/README.md), not asserted on a shared machine."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.stack

ROOT = Path(__file__).resolve().parents[2]


def test_paced_sessions_through_the_gateway_and_direct(tmp_path: Path) -> None:
    out = tmp_path / "streams.json"
    run = subprocess.run([sys.executable, "bench/streams.py", "--sessions", "20", "--seconds", "3", "--rounds", "2",
                          "--json", str(out)], check=False, cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert out.exists(), run.stderr[-3000:]
    figures = json.loads(out.read_text())
    assert run.returncode == 0, json.dumps(figures, indent=2)
    assert figures["results"] == {"gateway": 120, "direct": 120, "expected_each": 120}
    assert figures["in_flight_after"] == 0
    for name in ("gateway_p50_ms", "gateway_p99_ms", "direct_p50_ms", "direct_p99_ms", "gateway_cpu_us_per_frame",
                 "gateway_rss_kib_per_session"):
        assert math.isfinite(figures[name]) and figures[name] > 0, (name, figures)
    assert figures["gateway_p99_ms"] >= figures["gateway_p50_ms"]
    rounds = figures["per_round"]
    assert len(rounds) == 2
    for name in ("added_p50_ms", "added_p99_ms", "gateway_p99_ms", "direct_p99_ms"):  # the median of two rounds
        assert figures[name] == pytest.approx((rounds[0][name] + rounds[1][name]) / 2, abs=0.011), (name, figures)
    for phase in ("direct", "gateway"):
        assert 0 <= figures["cpu_cores_used"][phase]["host_steal"] < 1, figures["cpu_cores_used"]
    # One gateway worker per core by default; more than one share their state in a real redis-server.
    assert figures["workers"] == (os.cpu_count() or 1)
    assert ("redis" in figures["cpu_cores_used"]["gateway"]) == (figures["workers"] > 1)
