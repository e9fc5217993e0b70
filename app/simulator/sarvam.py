"""Sarvam AI (https://api.sarvam.ai): translate, text-to-speech (plain and streamed) and speech-to-text.

Errors are ``{"error": {"message", "code", "request_id"}}``; a missing key is a 403 ``invalid_api_key_error``.
"""

from __future__ import annotations

import base64
from typing import Any

from litestar import Response, Router, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.exceptions import ClientException

from app.simulator import content
from app.simulator.audio import audio_duration_sec, synth_wav, wav_chunks, wav_without_header
from app.simulator.gate import AnyRequest, ProviderWire, admit, json_response, stream_response
from app.simulator.payload import InvalidRequest, int_choice, json_object, text_field
from app.simulator.state import SimulatorState
from app.wire.sarvam import SARVAM_ERRORS, new_request_id, sarvam_error

TTS_LANGUAGES = frozenset(
    {"bn-IN", "en-IN", "gu-IN", "hi-IN", "kn-IN", "ml-IN", "mr-IN", "od-IN", "pa-IN", "ta-IN", "te-IN"}
)
TRANSLATE_LANGUAGES = TTS_LANGUAGES | {
    "as-IN", "brx-IN", "doi-IN", "kok-IN", "ks-IN", "mai-IN", "mni-IN", "ne-IN", "sa-IN", "sat-IN", "sd-IN", "ur-IN",
}  # fmt: skip
STT_LANGUAGES = TRANSLATE_LANGUAGES | {"unknown"}
SAMPLE_RATES = frozenset({8000, 16000, 22050, 24000, 32000, 44100, 48000})
DEFAULT_SAMPLE_RATE = 22050
SECONDS_PER_CHAR = 0.06
MIN_SPEECH_SEC = 0.5
MAX_TRANSLATE_CHARS = 2000
MAX_TTS_CHARS = 2500
WAV_CODECS = frozenset({"wav", "linear16"})

SARVAM = ProviderWire(SARVAM_ERRORS, lambda request: bool(request.headers.get("api-subscription-key", "").strip()))


def speech_seconds(text: str) -> float:
    """How long the simulated voice takes to say ``text``."""
    return max(MIN_SPEECH_SEC, len(text) * SECONDS_PER_CHAR)


@post("/translate", include_in_schema=False)
async def translate(request: AnyRequest, sim_state: NamedDependency[SimulatorState]) -> Response[Any]:
    gate = await admit(request, sim_state, SARVAM, "translate")
    body = json_object(await request.body())
    text = text_field(body, "input", max_length=MAX_TRANSLATE_CHARS) or ""
    source = text_field(body, "source_language_code", choices=TRANSLATE_LANGUAGES | {"auto"}) or ""
    target = text_field(body, "target_language_code", choices=TRANSLATE_LANGUAGES) or ""
    text_field(body, "model", required=False, choices={"mayura:v1", "sarvam-translate:v1"})
    text_field(body, "speaker_gender", required=False, choices={"Male", "Female"})
    if source == "auto":
        source = content.detect_language(text)
    result = {
        "request_id": new_request_id(),
        "translated_text": content.translate(text, source, target),
        "source_language_code": source,
    }
    return json_response(result, gate)


def _tts_request(body: dict[str, Any]) -> tuple[list[str], int]:
    """The texts to speak and the sample rate; accepts ``text`` or the legacy ``inputs`` list, and the language
    as ``target_language_code`` or (as the current sarvamai client sends it) ``language_code``."""
    if isinstance(body.get("inputs"), list) and body.get("text") is None:
        texts = [
            text_field({"inputs": item}, "inputs", max_length=MAX_TTS_CHARS) or "" for item in body["inputs"]
        ]
        if not texts:
            raise InvalidRequest("inputs: List should have at least 1 item")
    else:
        texts = [text_field(body, "text", max_length=MAX_TTS_CHARS) or ""]
    language_field = (
        "target_language_code" if body.get("target_language_code") is not None else "language_code"
    )
    text_field(body, language_field, choices=TTS_LANGUAGES)
    text_field(body, "speaker", required=False)
    text_field(body, "model", required=False)
    codec = text_field(body, "output_audio_codec", required=False)
    if codec is not None and codec not in WAV_CODECS:
        raise InvalidRequest(f"output_audio_codec: the simulator produces WAV only; got {codec!r}")
    rate = int_choice(body.get("speech_sample_rate"), "speech_sample_rate", SAMPLE_RATES, DEFAULT_SAMPLE_RATE)
    return texts, rate


@post("/text-to-speech", include_in_schema=False)
async def text_to_speech(request: AnyRequest, sim_state: NamedDependency[SimulatorState]) -> Response[Any]:
    gate = await admit(request, sim_state, SARVAM, "tts")
    texts, rate = _tts_request(json_object(await request.body()))
    audios = [base64.b64encode(synth_wav(speech_seconds(text), rate)).decode() for text in texts]
    return json_response({"request_id": new_request_id(), "audios": audios}, gate)


@post("/text-to-speech/stream", include_in_schema=False)
async def text_to_speech_stream(
    request: AnyRequest, sim_state: NamedDependency[SimulatorState]
) -> Response[Any]:
    gate = await admit(request, sim_state, SARVAM, "tts")
    texts, rate = _tts_request(json_object(await request.body()))
    wav = synth_wav(speech_seconds(" ".join(texts)), rate)
    chunks = wav_chunks(wav_without_header(wav) if gate.malformed else wav, rate)
    return stream_response(chunks, gate, media_type="audio/wav")


@post("/speech-to-text", include_in_schema=False, request_max_body_size=100 * 1024 * 1024)
async def speech_to_text(request: AnyRequest, sim_state: NamedDependency[SimulatorState]) -> Response[Any]:
    gate = await admit(request, sim_state, SARVAM, "stt")
    try:
        form = await request.form()
    except ClientException as exc:  # not multipart, broken multipart, or too large
        return sarvam_error(
            exc.status_code, f"Request body must be multipart/form-data with a 'file' part: {exc.detail}"
        )
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        return sarvam_error(400, "file: Field required")
    language = form.get("language_code") or "unknown"
    if language not in STT_LANGUAGES:
        return sarvam_error(400, f"language_code: Input should be one of {', '.join(sorted(STT_LANGUAGES))}")
    if audio_duration_sec(upload.file) is None:  # Litestar spooled it; only its header is read
        return sarvam_error(400, "Failed to read the audio file: corrupt or unsupported format.")
    detected = "hi-IN" if language == "unknown" else str(language)
    result: dict[str, Any] = {
        "request_id": new_request_id(),
        "transcript": content.transcript(detected),
        "timestamps": None,
        "diarized_transcript": None,
        "language_code": detected,
    }
    if language == "unknown":
        result["language_probability"] = 0.98
    return json_response(result, gate)


def sarvam_router() -> Router:
    return SARVAM.router("/sarvam", [translate, text_to_speech, text_to_speech_stream, speech_to_text])
