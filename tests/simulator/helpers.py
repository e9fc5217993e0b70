"""Credentials and small helpers shared by the simulator tests."""

from __future__ import annotations

import io
import shutil
import subprocess
import wave
from pathlib import Path
from typing import Any

import httpx

from app.simulator.audio import synth_wav

SARVAM = {"api-subscription-key": "test-key"}
DEEPGRAM = {"Authorization": "Token test-key"}
OPENAI = {"Authorization": "Bearer test-key"}


def wav_seconds(data: bytes) -> float:
    """Duration of a WAV file, read with the standard library."""
    with wave.open(io.BytesIO(data), "rb") as wav:
        assert wav.getnchannels() == 1
        assert wav.getsampwidth() == 2
        return wav.getnframes() / wav.getframerate()


def wav_rate(data: bytes) -> int:
    with wave.open(io.BytesIO(data), "rb") as wav:
        return wav.getframerate()


def set_fault(client: httpx.Client, **fault: Any) -> list[dict[str, Any]]:
    response = client.put("/_sim/faults", json=fault)
    assert response.status_code == 200, response.text
    table: list[dict[str, Any]] = response.json()
    return table


def make_mp3(tmp_path: Path, seconds: float) -> bytes:
    """An MP3 of ``seconds`` made with the lame encoder."""
    lame = shutil.which("lame")
    assert lame is not None, "lame is not installed (scripts/test.sh installs it: apt-get install lame)"
    source, target = tmp_path / "in.wav", tmp_path / "out.mp3"
    source.write_bytes(synth_wav(seconds, 16000))
    subprocess.run([lame, "--quiet", str(source), str(target)], check=True)
    return target.read_bytes()
