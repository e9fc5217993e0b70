"""``bench/fleet.py`` runs end to end on a real Redis: the fleet view reads back every call of
three replicas, and sharing stays within issue 13's budget of 0.02 ms of CPU per request (the
measured figure is about a tenth of it, so the shared machine's noise cannot flip this)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.stack

ROOT = Path(__file__).resolve().parents[2]


def test_sharing_the_recorder_costs_under_0_02_ms_per_request() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "fleet.py"), "--seconds", "15"], check=False,
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    text = done.stdout
    assert "fleet totals read back by replica 0: 45000 calls (expected 45000)" in text, text
    [flush] = re.findall(r"flush CPU: [\d.]+ ms per second, ([\d.]+) ms per request", text)
    [server] = re.findall(r"redis-server CPU \(all replicas' flushes\): ([\d.]+) ms per request", text)
    assert 0 < float(flush) <= 0.02, text
    assert float(flush) + float(server) <= 0.02, text
