"""The audio helpers: WAVs the standard library reads, and durations read back from WAV and MP3."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.simulator.audio import audio_duration_sec, synth_wav, wav_chunks
from tests.simulator.helpers import make_mp3, wav_rate, wav_seconds


@pytest.mark.unit
@pytest.mark.parametrize(("seconds", "rate"), [(0.5, 8000), (1.25, 22050), (3.0, 24000), (2.0, 44100)])
def test_synth_wav_has_the_requested_length_and_rate(seconds: float, rate: int) -> None:
    wav = synth_wav(seconds, rate)
    assert wav_seconds(wav) == pytest.approx(seconds, abs=1 / rate)
    assert wav_rate(wav) == rate


@pytest.mark.unit
def test_synth_wav_is_a_quiet_tone_not_silence() -> None:
    pcm = synth_wav(0.1, 16000)[44:]
    samples = [int.from_bytes(pcm[i : i + 2], "little", signed=True) for i in range(0, len(pcm), 2)]
    assert 0 < max(samples) <= 32767 // 10 + 1
    assert min(samples) < 0


@pytest.mark.unit
def test_wav_chunks_put_the_header_in_the_first_chunk_and_rejoin() -> None:
    wav = synth_wav(1.1, 16000)
    chunks = wav_chunks(wav, 16000)
    assert b"".join(chunks) == wav
    assert chunks[0].startswith(b"RIFF") and len(chunks[0]) == 44 + 8000
    assert len(chunks) == 5


@pytest.mark.unit
def test_audio_duration_of_wav() -> None:
    assert audio_duration_sec(synth_wav(2.5, 16000)) == pytest.approx(2.5)


def test_audio_duration_of_mp3(tmp_path: Path) -> None:
    # MP3 frames are padded (encoder delay), so the length reads slightly longer than the source.
    assert audio_duration_sec(make_mp3(tmp_path, 3.0)) == pytest.approx(3.0, abs=0.15)


@pytest.mark.parametrize(
    "data",
    [b"", b"this is not audio at all" * 20, synth_wav(1.0, 16000)[:30], b"RIFF\x00\x00\x00\x00WAVEjunk"],
    ids=["empty", "text", "cut-header", "bad-riff"],
)
@pytest.mark.unit
def test_unreadable_audio_has_no_duration(data: bytes) -> None:
    assert audio_duration_sec(data) is None
