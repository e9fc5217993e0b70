"""Sarvam's wire format: its HTTP errors (``{"error": {"message", "code", "request_id"}}``, a
missing key a 403 ``invalid_api_key_error``) and the messages of its streaming WebSockets,
``/speech-to-text/ws`` (``{"audio": {"data", "sample_rate", "encoding"}}`` and ``{"type":
"flush"}`` in; ``{"type": "data" | "error" | "events", "data"}`` out) and ``/text-to-speech/ws``
(``config``, ``text``, ``flush``, ``ping`` in; ``audio``, ``event``, ``error`` out).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from litestar import Response

from .errors import ErrorShape

STT_SAMPLE_RATES = frozenset({8000, 16000, 22050, 24000})
"""``/speech-to-text/ws``'s ``sample_rate`` values."""
STT_CODECS = frozenset({"wav", "pcm_s16le", "pcm_l16", "pcm_raw"})
"""``/speech-to-text/ws``'s ``input_audio_codec`` values."""


def new_request_id() -> str:
    """Sarvam's request ids look like ``20250101_<uuid>``."""
    return f"{datetime.now(UTC):%Y%m%d}_{uuid.uuid4()}"


_CODES = {
    400: "invalid_request_error",
    401: "invalid_api_key_error",
    403: "invalid_api_key_error",
    404: "not_found_error",
    413: "invalid_request_error",
    422: "unprocessable_entity_error",
    429: "rate_limit_exceeded_error",
    503: "rate_limit_exceeded_error",
}
_MESSAGES = {
    "invalid_request_error": "Invalid request.",
    "invalid_api_key_error": "Invalid API key. Please check your API subscription key and try again.",
    "not_found_error": "Resource not found.",
    "unprocessable_entity_error": "The request could not be processed.",
    "rate_limit_exceeded_error": "Rate limit exceeded. Please retry after some time.",
    "internal_server_error": "Internal server error. Please try again later.",
}



def sarvam_error(
    status_code: int,
    message: str | None = None,
    *,
    headers: Mapping[str, str] | None = None,
    request_id: str | None = None,
) -> Response[Any]:
    code = _CODES.get(status_code, "internal_server_error" if status_code >= 500 else "invalid_request_error")
    rid = request_id or new_request_id()
    body = {"error": {"message": message or _MESSAGES[code], "code": code, "request_id": rid}}
    return Response(body, status_code=status_code, headers=dict(headers or {}))


SARVAM_ERRORS = ErrorShape("sarvam", 403, sarvam_error)


def stt_data(transcript: str, *, request_id: str, language: str, audio_seconds: float,
             latency: float) -> dict[str, Any]:
    """A transcript of the audio received since the last one."""
    return {"type": "data", "data": {
        "request_id": request_id, "transcript": transcript, "timestamps": None, "diarized_transcript": None,
        "language_code": language, "language_probability": None,
        "metrics": {"audio_duration": round(audio_seconds, 3), "processing_latency": round(latency, 3)}}}


def stt_error(message: str, code: str) -> dict[str, Any]:
    return {"type": "error", "data": {"error": message, "code": code}}


def tts_audio(audio_b64: str, *, request_id: str, content_type: str = "audio/wav") -> dict[str, Any]:
    return {"type": "audio", "data": {"content_type": content_type, "audio": audio_b64, "request_id": request_id}}


def tts_final() -> dict[str, Any]:
    return {"type": "event", "data": {"event_type": "final"}}


def tts_error(message: str, code: int) -> dict[str, Any]:
    return {"type": "error", "data": {"message": message, "code": code}}
