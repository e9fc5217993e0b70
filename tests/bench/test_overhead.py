"""``bench/overhead.py --quick`` runs end to end and reports well-formed numbers.

The speed targets themselves are not asserted: the machine is shared and noisy, and the full run
(``python bench/overhead.py``) is the measurement. This proves the benchmark works: every
process starts, every request succeeds, and each number and ratio it prints is finite and sane.
"""

from __future__ import annotations

import importlib.util
import json
import math
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.stack

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


def _load_overhead() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_overhead", ROOT / "bench" / "overhead.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def test_profile_summary_charges_standard_library_time_to_its_caller() -> None:
    overhead = _load_overhead()
    stdlib, site = overhead.STDLIB, "/venv/lib/python3.11/site-packages"
    collapsed = "\n".join([
        f"main ({ROOT}/app/__main__.py:9);dumps ({stdlib}/json/encoder.py:200) 6",
        (f"main ({ROOT}/app/__main__.py:9);record ({site}/opentelemetry/sdk/metrics/_internal/instrument.py:5);"
        f"sorted ({stdlib}/functools.py:1) 3"),
        f"run ({stdlib}/asyncio/runners.py:118) 1",
        "not a stack line",
    ])
    run = overhead.ThroughputRun(ok=100, errors=0, seconds=1.0, cpu_ms_per_request={"gateway": 2.0})
    text = overhead.summarise_profile("gateway", collapsed, run)

    assert "gateway under py-spy: 100 req/s, 2.000 ms CPU per request, 10 samples holding the GIL" in text
    by_package = text.split("by package")[1].split("by function")[0]
    assert "60.0%   1.200 ms  app/__main__" in by_package  # json's time is the caller's
    assert "30.0%   0.600 ms  opentelemetry/sdk/metrics" in by_package
    assert "10.0%   0.200 ms  python (stdlib only)" in by_package
    assert "60.0%   1.200 ms  dumps (json/encoder.py)" in text.split("self time")[1]
    assert "90.0%   1.800 ms  main (app/__main__.py)" in text.split("inclusive time")[1]
