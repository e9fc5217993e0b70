"""The load test's CI mode: 30 s at 32 concurrent callers with faults injected upstream."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.stack

ROOT = Path(__file__).resolve().parents[2]


def test_under_load_with_faults_every_request_is_answered_and_memory_stays_flat(tmp_path: Path) -> None:
    out = tmp_path / "load.json"
    run = subprocess.run([sys.executable, "bench/load.py", "--mode", "ci", "--json", str(out),
                          "--logs", str(tmp_path / "logs")],
                         check=False, cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert out.exists(), run.stderr[-3000:]
    results = json.loads(out.read_text())
    assert results["failures"] == [], run.stderr[-3000:]
    assert run.returncode == 0
    assert results["requests"] > 1000 and results["concurrency"] == 32
    assert results["lost"] == [] and results["undocumented"] == []
    assert results["successes"] + sum(results["documented_errors"].values()) == results["requests"]
    assert any(key.startswith("502 ") for key in results["documented_errors"])  # the faults reached callers
    assert set(results["by_endpoint"]) >= {"translate", "tts sarvam", "stt", "chat stream", "rag query"}
    assert results["rss_mib"]["growth"] <= results["max_rss_growth_mib"] <= 16
