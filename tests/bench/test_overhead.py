"""``bench/overhead.py --quick`` runs end to end and reports well-formed numbers.

The speed targets themselves are not asserted: the machine is shared and noisy, and the full run
(``python bench/overhead.py``) is the measurement. This proves the benchmark works: every
process starts, every request succeeds, and each number and ratio it prints is finite and sane.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVERS = ("simulator", "gateway", "gateway-notel", "bare-proxy")
QUICK_SEQUENTIAL = 150


@pytest.mark.timeout(150)
def test_quick_run_prints_ratios_and_targets(tmp_path: Path) -> None:
    out = tmp_path / "overhead.json"
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "overhead.py"), "--quick", "--json", str(out)],
                          check=False, cwd=ROOT, capture_output=True, text=True, timeout=140)
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    text = done.stdout

    ratios = dict(re.findall(r"^  (gateway / bare proxy throughput|telemetry on / off throughput):\s+(\d+\.\d{3})$",
                             text, re.MULTILINE))
    assert set(ratios) == {"gateway / bare proxy throughput", "telemetry on / off throughput"}, text
    assert all(0 < float(v) < 10 for v in ratios.values()), ratios
    targets = re.findall(r"^  (median added latency translate|median added latency chat|throughput vs bare proxy)"
                         r"\s+(-?\d+\.\d{3}) .*(PASS|FAIL)$", text, re.MULTILINE)
    assert [t[0] for t in targets] == ["median added latency translate", "median added latency chat",
                                       "throughput vs bare proxy"], text

    data = json.loads(out.read_text())
    assert data["errors"] == []
    for endpoint in ("translate", "chat"):
        for server in SERVERS:
            stats = data["latency"][endpoint][server]
            assert stats["count"] == QUICK_SEQUENTIAL
            assert 0 < stats["median_ms"] <= stats["p90_ms"] <= stats["p99_ms"] < 1000, (endpoint, server, stats)
        for server in SERVERS[1:]:
            assert math.isfinite(data["added_ms"][endpoint][server]["median"])
    for server in SERVERS:
        assert data["rps"][server] > 0
        for run in data["throughput"][server]:
            assert run["errors"] == 0 and run["ok"] > 0
            assert run["cpu_ms_per_request"][server] > 0  # each server did the work it was timed on
    assert math.isclose(data["ratios"]["throughput_gateway_vs_bare"],
                        data["rps"]["gateway"] / data["rps"]["bare-proxy"])
    # The printed ratio is the measured one, not a constant.
    assert float(ratios["gateway / bare proxy throughput"]) == pytest.approx(
        data["ratios"]["throughput_gateway_vs_bare"], abs=0.001)
