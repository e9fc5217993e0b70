"""Deepgram's wire format: its HTTP errors (``{"err_code", "err_msg", "request_id"}``, a missing
key a 401 ``INVALID_AUTH``) and the messages of its live WebSockets, ``/v1/listen`` (``Results``,
``Metadata``, ``UtteranceEnd``, ``SpeechStarted`` out; ``KeepAlive``, ``Finalize``,
``CloseStream`` in) and ``/v1/speak`` (``Speak``, ``Flush``, ``Clear``, ``Close`` in; audio,
``Metadata``, ``Flushed``, ``Cleared`` out).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from litestar import Response

from .errors import ErrorShape

LISTEN_ENCODINGS = frozenset({"linear16", "linear32", "flac", "alaw", "mulaw", "amr-nb", "amr-wb", "opus",
                              "ogg-opus", "speex", "g729"})
"""``/v1/listen``'s ``encoding`` values; without one the audio is a container (WAV, MP3, ...)."""
RAW_SAMPLE_BYTES = {"linear16": 2, "linear32": 4, "alaw": 1, "mulaw": 1}
"""Bytes per sample of the raw encodings (which need ``sample_rate``)."""
SPEAK_ENCODINGS = frozenset({"linear16", "mulaw", "alaw"})
"""``/v1/speak``'s live ``encoding`` values."""
SPEAK_SAMPLE_RATES = frozenset({8000, 16000, 24000, 32000, 48000})

_ERRORS = {
    400: ("Bad Request", "Bad Request: the request could not be processed."),
    401: ("INVALID_AUTH", "Invalid credentials."),
    402: ("ASR_PAYMENT_REQUIRED", "Project does not have enough credits for this request."),
    403: ("INSUFFICIENT_PERMISSIONS", "You do not have permission to access this resource."),
    404: ("NOT_FOUND", "The requested resource was not found."),
    413: ("PAYLOAD_TOO_LARGE", "The request payload is too large."),
    429: ("TOO_MANY_REQUESTS", "Too many requests. Please try again later."),
    503: ("SERVICE_UNAVAILABLE", "The service is temporarily unavailable. Please try again later."),
}


def deepgram_error(
    status_code: int,
    message: str | None = None,
    *,
    headers: Mapping[str, str] | None = None,
    request_id: str | None = None,
) -> Response[Any]:
    default = ("INTERNAL_SERVER_ERROR", "Internal server error.") if status_code >= 500 else _ERRORS[400]
    code, default_message = _ERRORS.get(status_code, default)
    rid = request_id or str(uuid.uuid4())
    body = {"err_code": code, "err_msg": message or default_message, "request_id": rid}
    return Response(body, status_code=status_code, headers={"dg-request-id": rid, **(headers or {})})


DEEPGRAM_ERRORS = ErrorShape("deepgram", 401, deepgram_error)


def model_info(model: str) -> dict[str, str]:
    return {"name": f"general-{model}", "version": "2025-01-01.0", "arch": model}


def words(transcript: str, start: float, duration: float) -> list[dict[str, Any]]:
    """Word timings spread evenly over ``duration`` seconds from ``start``."""
    spoken = transcript.split()
    step = duration / max(1, len(spoken))
    return [{"word": word.strip(".,!?").lower(), "start": round(start + i * step, 3),
             "end": round(start + (i + 1) * step, 3), "confidence": 0.99, "punctuated_word": word}
            for i, word in enumerate(spoken)]


def results(transcript: str, start: float, duration: float, *, request_id: str, model: str, model_id: str,
            from_finalize: bool = False) -> dict[str, Any]:
    """A final ``Results`` message for the audio from ``start`` for ``duration`` seconds."""
    return {
        "type": "Results", "channel_index": [0, 1], "duration": round(duration, 3), "start": round(start, 3),
        "is_final": True, "speech_final": True, "from_finalize": from_finalize,
        "channel": {"alternatives": [{"transcript": transcript, "confidence": 0.99,
                                      "words": words(transcript, start, duration)}]},
        "metadata": {"request_id": request_id, "model_info": model_info(model), "model_uuid": model_id},
    }


def speech_started(timestamp: float) -> dict[str, Any]:
    return {"type": "SpeechStarted", "channel": [0], "timestamp": round(timestamp, 3)}


def utterance_end(last_word_end: float) -> dict[str, Any]:
    return {"type": "UtteranceEnd", "channel": [0, 1], "last_word_end": round(last_word_end, 3)}


def listen_metadata(*, request_id: str, sha256: str, created: str, duration: float, model: str,
                    model_id: str) -> dict[str, Any]:
    """The ``Metadata`` message that ends a live transcription."""
    return {"type": "Metadata", "transaction_key": "deprecated", "request_id": request_id, "sha256": sha256,
            "created": created, "duration": round(duration, 6), "channels": 1, "models": [model_id],
            "model_info": {model_id: model_info(model)}}


def speak_metadata(*, request_id: str, model: str, model_id: str) -> dict[str, Any]:
    return {"type": "Metadata", "request_id": request_id, "model_name": model, "model_version": "2025-01-01.0",
            "model_uuid": model_id}


def flushed(sequence_id: int) -> dict[str, Any]:
    return {"type": "Flushed", "sequence_id": sequence_id}


def cleared(sequence_id: int) -> dict[str, Any]:
    return {"type": "Cleared", "sequence_id": sequence_id}
