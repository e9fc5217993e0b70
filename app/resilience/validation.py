"""Input checks that run before any provider is called (invalid input costs nothing)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import mutagen

from ..calls import invalid
from ..config import ServiceConfig
from ..spool import SpooledFile

# Languages each provider serves (BCP-47 as the providers spell them).
SARVAM_LANGUAGES = frozenset({
    "bn-IN", "en-IN", "gu-IN", "hi-IN", "kn-IN", "ml-IN", "mr-IN", "od-IN", "pa-IN", "ta-IN", "te-IN",
})
DEEPGRAM_STT_LANGUAGES = frozenset({"en-US", "en-GB", "en-IN", "en-AU", "hi-IN"})
DEEPGRAM_TTS_LANGUAGES = frozenset({"en-US", "en-GB", "en-IN", "en-AU"})
ALL_LANGUAGES = SARVAM_LANGUAGES | DEEPGRAM_STT_LANGUAGES

AUDIO_TYPES = {
    "audio/wav": "wav", "audio/x-wav": "wav", "audio/wave": "wav", "audio/vnd.wave": "wav",
    "audio/mpeg": "mp3", "audio/mp3": "mp3",
}


def check_text(text: str, cfg: ServiceConfig, field: str = "text") -> None:
    if not text.strip():
        raise invalid(f"{field} is empty", 422)
    if len(text) > cfg.max_text_length:
        raise invalid(f"{field} has {len(text)} characters; {cfg.name} accepts at most {cfg.max_text_length}", 422)


def check_text_field(body: Mapping[str, Any], name: str, cfg: ServiceConfig) -> None:
    """A provider's own request field that carries text: a string within the provider's limits."""
    value = body.get(name)
    if not isinstance(value, str):
        raise invalid(f"{name} must be a string", 422)
    check_text(value, cfg, name)


def check_language(code: str, allowed: frozenset[str], field: str = "language_code") -> None:
    if code not in allowed:
        raise invalid(f"{field} {code!r} is not supported; use one of {', '.join(sorted(allowed))}", 422)


@dataclass(frozen=True)
class Audio:
    """Uploaded audio that passed validation: where its bytes are spooled (never one ``bytes``
    object), with its duration read from the audio itself."""

    source: SpooledFile
    content_type: str
    duration_sec: float

    @property
    def size(self) -> int:
        return self.source.size


def check_audio(source: SpooledFile, content_type: str | None, cfg: ServiceConfig) -> Audio:
    """Size as counted, media type and duration (read by mutagen from the audio header, WAV and
    MP3). Reads the spooled file: call it from a worker thread when the upload is on disk."""
    media_type = (content_type or "").split(";")[0].strip().lower()
    if media_type not in AUDIO_TYPES:
        raise invalid(f"unsupported audio type {media_type or 'none'!r}; send one of "
                      f"{', '.join(sorted(AUDIO_TYPES))}", 415)
    if source.size > cfg.max_audio_size_bytes:
        raise invalid(f"audio is {source.size / 1048576:.1f} MB; {cfg.name} accepts at most "
                      f"{cfg.max_audio_size_mb:g} MB", 413)
    if not source.size:
        raise invalid("audio is empty", 422)
    duration = audio_duration(source)
    if duration is None or duration <= 0:
        raise invalid(f"audio could not be read as {AUDIO_TYPES[media_type].upper()}: corrupt or truncated", 422)
    if duration > cfg.max_audio_duration_sec:
        raise invalid(f"audio lasts {duration:.1f} s; {cfg.name} accepts at most {cfg.max_audio_duration_sec:g} s", 422)
    return Audio(source, media_type, duration)


def sniffed_type(source: SpooledFile, declared: str | None) -> str | None:
    """``declared``, unless it says nothing (none, or ``application/octet-stream``, as SDKs label
    raw bytes): then the type the audio's first bytes show (WAV or MP3), if they show one. Reads
    the spooled file: call it from a worker thread."""
    if (declared or "").split(";")[0].strip().lower() not in ("", "application/octet-stream"):
        return declared
    with source.open() as audio:
        head = audio.read(12)
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio/wav"
    if head[:3] == b"ID3" or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "audio/mpeg"
    return declared


def audio_duration(source: SpooledFile) -> float | None:
    """Seconds of audio, or None when mutagen cannot read it."""
    try:
        with source.open() as audio:
            parsed = mutagen.File(audio)
    except Exception:  # mutagen raises many types on corrupt input
        return None
    if parsed is None or parsed.info is None:
        return None
    length = getattr(parsed.info, "length", None)
    return float(length) if length else None
