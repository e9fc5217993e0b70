"""The live drop-in routes, each provider's own WebSocket protocol relayed through the door:
``/deepgram/v1/listen``, ``/deepgram/v1/speak``, ``/sarvam/speech-to-text/ws`` and
``/sarvam/text-to-speech/ws``. What the gateway reads of each protocol: the query's audio format
(validated at the handshake), the caller's messages that count as usage (audio seconds,
characters) or ask for a result, and the provider's messages that are results."""

from __future__ import annotations

from typing import Any

from litestar import Router, WebSocket, websocket
from litestar.datastructures import MultiDict

from ..calls import CallContext, invalid
from ..wire import deepgram as dg
from ..wire import sarvam as sv
from ..wire.frames import json_message
from .dropin import DEEPGRAM_DROPIN, SARVAM_DROPIN, deepgram_key, sarvam_key
from .live import Frame, LiveProtocol, LiveRoute

AnySocket = WebSocket[Any, Any, Any]
Query = MultiDict[str]
BASE64_WAV_HEADER = "UklGR"
"""How a base64 WAV file starts ("RIFF")."""




def _rate(query: Query, name: str, allowed: frozenset[int] | None = None, required: bool = False) -> int | None:
    value = query.get(name)
    if value is None:
        if required:
            raise invalid(f"{name} is required with this encoding", 422)
        return None
    try:
        rate = int(value)
    except ValueError:
        raise invalid(f"{name} must be a whole number of hertz, not {value!r}", 422) from None
    if (allowed is not None and rate not in allowed) or not 8000 <= rate <= 96000:
        shown = ", ".join(map(str, sorted(allowed))) if allowed else "8000 to 96000"
        raise invalid(f"{name} {rate} is not one of {shown}", 422)
    return rate


def _choice(query: Query, name: str, allowed: frozenset[str]) -> str | None:
    value = query.get(name)
    if value is not None and value not in allowed:
        raise invalid(f"{name} {value!r} is not one of {', '.join(sorted(allowed))}", 422)
    return value


# -- Deepgram ----------------------------------------------------------------------------------


def _listen_check(query: Query) -> None:
    encoding = _choice(query, "encoding", dg.LISTEN_ENCODINGS)
    _rate(query, "sample_rate", required=encoding in dg.RAW_SAMPLE_BYTES)


def _listen_count(frame: Frame, query: Query, ctx: CallContext) -> None:
    width = dg.RAW_SAMPLE_BYTES.get(query.get("encoding") or "")
    if isinstance(frame, bytes) and width:
        ctx.audio_seconds += len(frame) / (width * int(query.get("sample_rate") or 1) * int(query.get("channels") or 1))


def _speak_check(query: Query) -> None:
    _choice(query, "encoding", dg.SPEAK_ENCODINGS)
    _rate(query, "sample_rate", dg.SPEAK_SAMPLE_RATES)


def _speak_count(frame: Frame, _: Query, ctx: CallContext) -> None:
    data = json_message(frame)
    if data.get("type") == "Speak":
        ctx.characters += len(str(data.get("text", "")))


DEEPGRAM_LISTEN = LiveProtocol(
    "deepgram", "stt", "/v1/listen", _listen_check, _listen_count,
    asks=lambda frame: isinstance(frame, bytes), is_result=lambda frame: json_message(frame).get("type") == "Results")
DEEPGRAM_SPEAK = LiveProtocol(
    "deepgram", "tts", "/v1/speak", _speak_check, _speak_count,
    asks=lambda frame: json_message(frame).get("type") == "Flush", is_result=lambda frame: isinstance(frame, bytes))


# -- Sarvam ------------------------------------------------------------------------------------


def _stt_check(query: Query) -> None:
    _rate(query, "sample_rate", sv.STT_SAMPLE_RATES)
    _choice(query, "input_audio_codec", sv.STT_CODECS)


def _stt_count(frame: Frame, query: Query, ctx: CallContext) -> None:
    audio = json_message(frame).get("audio")
    if not isinstance(audio, dict):
        return
    data = str(audio.get("data", ""))
    size = len(data) * 3 // 4 - data[-2:].count("=") - (44 if data.startswith(BASE64_WAV_HEADER) else 0)
    rate = audio.get("sample_rate") or query.get("sample_rate") or 16000
    ctx.audio_seconds += max(0, size) / (2 * int(rate))


def _tts_count(frame: Frame, _: Query, ctx: CallContext) -> None:
    data = json_message(frame)
    body = data.get("data")
    if data.get("type") == "text" and isinstance(body, dict):
        ctx.characters += len(str(body.get("text", "")))


SARVAM_STT = LiveProtocol(
    "sarvam", "stt", "/speech-to-text/ws", _stt_check, _stt_count,
    asks=lambda frame: "audio" in json_message(frame),
    is_result=lambda frame: json_message(frame).get("type") == "data")
SARVAM_TTS = LiveProtocol(
    "sarvam", "tts", "/text-to-speech/ws", lambda _: None, _tts_count,
    asks=lambda frame: json_message(frame).get("type") == "flush",
    is_result=lambda frame: json_message(frame).get("type") == "audio")


DEEPGRAM_ROUTE = LiveRoute(deepgram_key, DEEPGRAM_DROPIN.refused, DEEPGRAM_DROPIN.unauthorized)
SARVAM_ROUTE = LiveRoute(sarvam_key, SARVAM_DROPIN.refused, SARVAM_DROPIN.unauthorized)


@websocket("/v1/listen")
async def deepgram_listen(socket: AnySocket) -> None:
    await DEEPGRAM_ROUTE.serve(socket, DEEPGRAM_LISTEN)


@websocket("/v1/speak")
async def deepgram_speak(socket: AnySocket) -> None:
    await DEEPGRAM_ROUTE.serve(socket, DEEPGRAM_SPEAK)


@websocket("/speech-to-text/ws")
async def sarvam_listen(socket: AnySocket) -> None:
    await SARVAM_ROUTE.serve(socket, SARVAM_STT)


@websocket("/text-to-speech/ws")
async def sarvam_speak(socket: AnySocket) -> None:
    await SARVAM_ROUTE.serve(socket, SARVAM_TTS)


def routers() -> list[Router]:
    return [Router("/deepgram", route_handlers=[deepgram_listen, deepgram_speak], include_in_schema=False),
            Router("/sarvam", route_handlers=[sarvam_listen, sarvam_speak], include_in_schema=False)]
