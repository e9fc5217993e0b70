"""Audio fixtures made at test time: WAV with the stdlib, MP3 with Debian's lame."""

from __future__ import annotations

import io
import math
import shutil
import struct
import subprocess
import wave
from pathlib import Path


def wav(seconds: float, rate: int = 16000) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        frames = int(seconds * rate)
        out.writeframes(b"".join(struct.pack("<h", int(3000 * math.sin(i / 10))) for i in range(frames)))
    return buffer.getvalue()


def mp3(seconds: float, tmp: Path) -> bytes:
    lame = shutil.which("lame")
    assert lame, "Debian's lame is needed to make MP3 fixtures (scripts/test.sh installs it)"
    source, target = tmp / "in.wav", tmp / "out.mp3"
    source.write_bytes(wav(seconds))
    subprocess.run([lame, "--quiet", "-b", "64", str(source), str(target)], check=True)
    return target.read_bytes()
