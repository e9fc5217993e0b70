"""Audio helpers for the simulator: make a WAV of a given length, and read the length of uploaded audio."""

from __future__ import annotations

import io
import math
import sys
import wave
from array import array
from functools import lru_cache
from typing import IO

import mutagen

TONE_HZ = 440
"""Every sample rate we accept holds a whole number of 440 Hz periods per second, so one second loops cleanly."""

AMPLITUDE = 0.1
"""A quiet tone: a tenth of full scale."""

WAV_HEADER_BYTES = 44
"""Size of the canonical RIFF/WAVE header that :func:`synth_wav` writes before the PCM data."""


@lru_cache(maxsize=16)
def _tone_second(sample_rate: int) -> bytes:
    """One second of 16-bit little-endian mono PCM: a sine at :data:`TONE_HZ`."""
    peak = int(32767 * AMPLITUDE)
    step = 2 * math.pi * TONE_HZ / sample_rate
    samples = array("h", (int(peak * math.sin(step * i)) for i in range(sample_rate)))
    if sys.byteorder == "big":  # WAV PCM is little-endian
        samples.byteswap()
    return samples.tobytes()


def pcm_tone(duration_sec: float, sample_rate: int) -> bytes:
    """16-bit mono PCM of ``duration_sec`` seconds (no header)."""
    frames = max(0, round(duration_sec * sample_rate))
    second = _tone_second(sample_rate)
    whole, rest = divmod(frames, sample_rate)
    return second * whole + second[: rest * 2]


def synth_wav(duration_sec: float, sample_rate: int) -> bytes:
    """A complete WAV file (16-bit PCM, mono) holding a quiet tone of ``duration_sec`` seconds."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        wav.writeframes(pcm_tone(duration_sec, sample_rate))
    return buffer.getvalue()


def audio_duration_sec(audio: bytes | IO[bytes]) -> float | None:
    """Duration of encoded audio (WAV, MP3 and whatever else mutagen reads), or None when unreadable.
    A file is read from where it stands (only its header, for WAV), so an upload need not be in memory."""
    if not audio:
        return None
    try:
        parsed = mutagen.File(io.BytesIO(audio) if isinstance(audio, bytes) else audio)
    except Exception:
        return None
    length = getattr(getattr(parsed, "info", None), "length", None)
    if not isinstance(length, (int, float)) or length <= 0 or math.isinf(length) or math.isnan(length):
        return None
    return float(length)


def wav_without_header(wav: bytes) -> bytes:
    """The bare PCM of a WAV made by :func:`synth_wav`: what a broken upstream sends instead of a WAV file."""
    return wav[WAV_HEADER_BYTES:]


def wav_chunks(wav: bytes, sample_rate: int, chunk_sec: float = 0.25) -> list[bytes]:
    """Stream pieces of a WAV: the header with the first ``chunk_sec`` of PCM, then ``chunk_sec`` per piece."""
    size = max(2, int(sample_rate * chunk_sec) * 2)
    first = WAV_HEADER_BYTES + size
    return [wav[:first]] + [wav[start : start + size] for start in range(first, len(wav), size)]
