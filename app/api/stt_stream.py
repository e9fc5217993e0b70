"""``/v1/stt/stream``: live speech-to-text in one simple protocol of the gateway's own, on whichever
provider admits the session (the fallback rules of ``/v1/stt``).

Connect with ``Authorization: Bearer <key>`` (when ``GATEWAY_API_KEYS`` is set) and the query
``language_code`` (required), ``sample_rate`` (8000, 16000, 22050 or 24000; default 16000) and
``provider`` (``sarvam`` or ``deepgram``: that one only). The gateway first sends
``{"type": "session", "provider", "fallback"}``. Send audio as binary messages of 16-bit
little-endian mono PCM at ``sample_rate`` (100 ms each is usual), and ``{"type": "finalize"}``
to have what was sent transcribed now. The gateway sends ``{"type": "transcript", "text",
"audio_seconds"}`` as the provider transcribes. Close the socket (1000) to end the session.
Refusals answer the handshake with their status and ``application/problem+json``.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from litestar import Router, WebSocket, websocket
from litestar.datastructures import MultiDict

from ..calls import CallContext, GatewayError, invalid
from ..resilience.auth import bearer_token
from ..wire import sarvam as sv
from ..wire.frames import json_message
from .door import count, door
from .live import Frame, LiveProtocol, LiveRoute
from .problems import HTTP_ERROR_TYPES, gateway_error_response, problem

AnySocket = WebSocket[Any, Any, Any]
Query = MultiDict[str]
DEFAULT_RATE = 16000
FINALIZE = "finalize"


def _rate(query: Query) -> int:
    value = query.get("sample_rate") or str(DEFAULT_RATE)
    if not value.isdigit() or int(value) not in sv.STT_SAMPLE_RATES:
        raise invalid(f"sample_rate must be one of {', '.join(map(str, sorted(sv.STT_SAMPLE_RATES)))}", 422)
    return int(value)


def _language(query: Query) -> str:
    language = query.get("language_code")
    if not language:
        raise invalid("language_code is required (for example hi-IN or en-US)", 422)
    return language


def _count(frame: Frame, query: Query, ctx: CallContext) -> None:
    if isinstance(frame, bytes):
        ctx.audio_seconds += len(frame) / (2 * _rate(query))


def _asks(frame: Frame) -> bool:
    return isinstance(frame, bytes)


def _finalize(frame: Frame) -> bool:
    return json_message(frame).get("type") == FINALIZE


def _transcript(text: str, seconds: object) -> str:
    return json.dumps({"type": "transcript", "text": text, "audio_seconds": seconds}, ensure_ascii=False)


def _from_deepgram(frame: Frame, _: Query) -> Frame | None:
    data = json_message(frame)
    if data.get("type") != "Results":
        return None
    return _transcript(data["channel"]["alternatives"][0]["transcript"], data.get("duration"))


def _to_sarvam(frame: Frame, query: Query) -> Frame | None:
    if isinstance(frame, bytes):
        audio = {"data": base64.b64encode(frame).decode(), "sample_rate": _rate(query), "encoding": "audio/wav"}
        return json.dumps({"audio": audio})
    return json.dumps({"type": "flush"}) if _finalize(frame) else None


def _from_sarvam(frame: Frame, _: Query) -> Frame | None:
    data = json_message(frame)
    body = data.get("data")
    if data.get("type") != "data" or not isinstance(body, dict):
        return None
    return _transcript(str(body.get("transcript", "")), (body.get("metrics") or {}).get("audio_duration"))


PROTOCOLS = {
    "deepgram": LiveProtocol(
        "deepgram", "stt", "/v1/listen", lambda query: None, _count, _asks,
        is_result=lambda frame: json_message(frame).get("type") == "Results",
        params=lambda query: [("model", "nova-3"), ("encoding", "linear16"), ("sample_rate", str(_rate(query))),
                              ("language", _language(query)), ("punctuate", "true")],
        to_provider=lambda frame, _: frame if isinstance(frame, bytes) else (
            json.dumps({"type": "Finalize"}) if _finalize(frame) else None),
        to_caller=_from_deepgram),
    "sarvam": LiveProtocol(
        "sarvam", "stt", "/speech-to-text/ws", lambda query: None, _count, _asks,
        is_result=lambda frame: json_message(frame).get("type") == "data",
        params=lambda query: [("language-code", _language(query)), ("sample_rate", str(_rate(query))),
                              ("input_audio_codec", "pcm_s16le")],
        to_provider=_to_sarvam, to_caller=_from_sarvam),
}


def _unauthorized(detail: str) -> Any:
    return problem(401, "Unauthorized", detail, HTTP_ERROR_TYPES[401],
                   headers={"WWW-Authenticate": 'Bearer realm="gateway"'})


ROUTE = LiveRoute(lambda headers: bearer_token(headers.get("authorization", "")), gateway_error_response,
                  _unauthorized)


@websocket("/stt/stream", opt=door("sarvam", "stt"))
async def stt_stream(socket: AnySocket) -> None:
    if not await ROUTE.authorized(socket, "gateway"):
        return
    query = socket.query_params
    provider = query.get("provider")
    try:
        _rate(query)
        language = _language(query)
        served = await socket.app.state.service_manager.fallbacks.stt_stream(
            language, provider, lambda name: ROUTE.open(socket, PROTOCOLS[name]))
    except GatewayError as error:
        if error.provider is None:  # refused before any provider's door: counted under the route's
            await count(socket.scope, error.detail)
        await ROUTE.refuse(socket, error)
        return
    greeting = json.dumps({"type": "session", "provider": served.provider, "fallback": served.fallback})
    await ROUTE.run(socket, served.value, PROTOCOLS[served.provider], greeting)


router = Router("/v1", route_handlers=[stt_stream])
