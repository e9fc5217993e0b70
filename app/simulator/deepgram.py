"""Deepgram (https://api.deepgram.com): pre-recorded speech-to-text, text-to-speech, and the projects list.

Errors are ``{"err_code", "err_msg", "request_id"}``; missing credentials are a 401 ``INVALID_AUTH``.
"""

from __future__ import annotations

import hashlib
import tempfile
import uuid
from datetime import UTC, datetime
from typing import Any

from litestar import Response, Router, get, post
from litestar.di import NamedDependency

from app.simulator import content
from app.simulator.audio import audio_duration_sec, synth_wav, wav_chunks, wav_without_header
from app.simulator.gate import (
    AnyConnection,
    AnyRequest,
    ProviderWire,
    admit,
    json_response,
    new_id,
    stream_response,
)
from app.simulator.payload import InvalidRequest, int_choice, json_object, text_field
from app.simulator.state import SimulatorState
from app.wire.deepgram import DEEPGRAM_ERRORS, deepgram_error

DEFAULT_STT_MODEL = "nova-3"
DEFAULT_TTS_MODEL = "aura-2-thalia-en"
SAMPLE_RATES = frozenset({8000, 16000, 24000, 32000, 48000})
DEFAULT_SAMPLE_RATE = 24000
SECONDS_PER_CHAR = 0.06
MIN_SPEECH_SEC = 0.5
MAX_SPEAK_CHARS = 2000
CORRUPT_AUDIO = "Bad Request: failed to process audio: corrupt or unsupported data"
_NAMESPACE = uuid.UUID("7d6c3f1e-2b1a-4c59-9a53-5b8a0f3e2d10")
"""Namespace for the simulator's stable model and project ids."""

def _authorized(request: AnyConnection) -> bool:
    """``Authorization: Token KEY`` (API keys) or ``Bearer KEY`` (access tokens); the scheme is case-insensitive."""
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() in {"token", "bearer"} and bool(key.strip())


DEEPGRAM = ProviderWire(DEEPGRAM_ERRORS, _authorized)


def _flag(request: AnyRequest, name: str) -> bool:
    return request.query_params.get(name, "").lower() == "true"


def model_id_of(model: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, model))


@post("/v1/listen", include_in_schema=False, request_max_body_size=100 * 1024 * 1024)
async def listen(request: AnyRequest, sim_state: NamedDependency[SimulatorState]) -> Response[Any]:
    gate = await admit(request, sim_state, DEEPGRAM, "stt")
    if request.content_type[0] == "application/json":
        return deepgram_error(
            400, "Bad Request: the simulator transcribes uploaded audio only, not remote URLs."
        )
    digest = hashlib.sha256()
    with tempfile.SpooledTemporaryFile(max_size=1024 * 1024) as audio:  # large uploads are not held in memory
        async for chunk in request.stream():
            digest.update(chunk)
            audio.write(chunk)
        audio.seek(0)
        duration = audio_duration_sec(audio)
    if duration is None:
        return deepgram_error(400, CORRUPT_AUDIO)
    model = request.query_params.get("model") or DEFAULT_STT_MODEL
    language = request.query_params.get("language") or "en"
    text = content.transcript(language)
    if not (_flag(request, "smart_format") or _flag(request, "punctuate")):
        text = " ".join(content.text_tokens(text))
    model_id = model_id_of(model)
    rid = new_id()
    result = {
        "metadata": {
            "transaction_key": "deprecated",
            "request_id": rid,
            "sha256": digest.hexdigest(),
            "created": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "duration": round(duration, 6),
            "channels": 1,
            "models": [model_id],
            "model_info": {model_id: {"name": f"general-{model}", "version": "2025-01-01.0", "arch": model}},
        },
        "results": {
            "channels": [
                {"alternatives": [{"transcript": text, "confidence": 0.99, "words": _words(text, duration)}]}
            ]
        },
    }
    return json_response(result, gate, headers={"dg-request-id": rid})


def _words(text: str, duration: float) -> list[dict[str, Any]]:
    """Word timings spread evenly over the audio."""
    spoken = text.split()
    step = duration / max(1, len(spoken))
    return [
        {
            "word": " ".join(content.text_tokens(word)),
            "start": round(index * step, 3),
            "end": round((index + 1) * step, 3),
            "confidence": 0.99,
            "punctuated_word": word,
        }
        for index, word in enumerate(spoken)
    ]


@post("/v1/speak", include_in_schema=False)
async def speak(request: AnyRequest, sim_state: NamedDependency[SimulatorState]) -> Response[Any]:
    gate = await admit(request, sim_state, DEEPGRAM, "tts")
    query = request.query_params
    text = text_field(json_object(await request.body()), "text", max_length=MAX_SPEAK_CHARS) or ""
    rate = int_choice(query.get("sample_rate"), "sample_rate", SAMPLE_RATES, DEFAULT_SAMPLE_RATE)
    if query.get("encoding", "linear16") != "linear16" or query.get("container", "wav") != "wav":
        raise InvalidRequest(
            "Bad Request: the simulator produces linear16 audio in a wav container only."
        )
    model = query.get("model") or DEFAULT_TTS_MODEL
    wav = synth_wav(max(MIN_SPEECH_SEC, len(text) * SECONDS_PER_CHAR), rate)
    headers = {
        "dg-request-id": new_id(),
        "dg-model-name": model,
        "dg-model-uuid": model_id_of(model),
        "dg-char-count": str(len(text)),
    }
    chunks = wav_chunks(wav_without_header(wav) if gate.malformed else wav, rate)
    return stream_response(chunks, gate, media_type="audio/wav", headers=headers)


@get("/v1/projects", include_in_schema=False)
async def projects(request: AnyRequest, sim_state: NamedDependency[SimulatorState]) -> Response[Any]:
    gate = await admit(request, sim_state, DEEPGRAM, "health")
    project = {"project_id": str(uuid.uuid5(_NAMESPACE, "project")), "name": "Simulated project"}
    return json_response({"projects": [project]}, gate)


def deepgram_router() -> Router:
    return DEEPGRAM.router("/deepgram", [listen, speak, projects])
