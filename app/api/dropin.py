"""Drop-in provider routes: each provider's own wire format, so that code written against its SDK
gets the gateway by changing the SDK's base URL only.

``/sarvam`` (translate, text-to-speech and its stream, speech-to-text), ``/deepgram/v1`` (listen,
speak) and ``/openai/v1`` (chat completions, embeddings) take what the SDK sends and hand it,
unknown fields included, to the provider's service, whose call passes the one door under the same
provider and operation names as ``/v1``. There is no fallback: the caller chose the provider.
Nothing else is routed (an unknown path is the provider's own 404). The SDK's credential carries
the gateway client key when ``GATEWAY_API_KEYS`` is set; the service puts the provider key (or the
simulator's) on the upstream call. A provider's error answer is relayed as it was sent, except a
refusal of the gateway's own credentials (it would blame the caller's key, and a provider may echo
part of ours); the gateway's own refusals are written in the provider's error shape, with the
status its SDK turns into the right typed error, ``Retry-After`` where it applies and
``X-Gateway-Error-Type`` naming the gateway's error type.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from litestar import Request, Response, Router, post, route
from litestar.connection import ASGIConnection
from litestar.datastructures import Headers
from litestar.enums import HttpMethod
from litestar.exceptions import (
    HTTPException,
    MethodNotAllowedException,
    NotAuthorizedException,
    NotFoundException,
    ValidationException,
)
from litestar.handlers.base import BaseRouteHandler
from litestar.response import Stream
from opentelemetry import trace

from ..calls import ErrorType, GatewayError, UpstreamAnswer, invalid
from ..config import ServiceConfig
from ..providers.catalog import Services
from ..providers.service import RelayedStream
from ..resilience.auth import bearer_token, check_client
from ..resilience.validation import Audio, check_audio, sniffed_type
from ..spool import SpooledFile
from ..wire.deepgram import DEEPGRAM_ERRORS
from ..wire.errors import ErrorShape
from ..wire.openai import OPENAI_ERRORS
from ..wire.sarvam import SARVAM_ERRORS
from .door import counted_refusals, door, noted
from .problems import HTTP_ERROR_TYPES, error_headers
from .uploads import received_body, received_form
from .v1 import json_body, json_object, manager, openai_chat, openai_embeddings, relayed, upload_spool

ERROR_TYPE_HEADER = "X-Gateway-Error-Type"
OTHER_METHODS = [HttpMethod.GET, HttpMethod.POST, HttpMethod.PUT, HttpMethod.PATCH, HttpMethod.DELETE]
"""What an unknown path under a provider answers 404 to (a known one answers 405 to all but POST)."""
NOT_POST = [method for method in OTHER_METHODS if method is not HttpMethod.POST]
AnyRequest = Request[Any, Any, Any]


def sarvam_key(headers: Headers) -> str:
    return headers.get("api-subscription-key", "").strip()


def deepgram_key(headers: Headers) -> str:
    """``Authorization: Token KEY`` (API keys) or ``Bearer KEY`` (the SDK's ``access_token``)."""
    scheme, _, key = headers.get("authorization", "").strip().partition(" ")
    return key.strip() if scheme.lower() in ("token", "bearer") else ""


def _openai_key(headers: Headers) -> str:
    return bearer_token(headers.get("authorization", ""))


@dataclass(frozen=True)
class DropIn:
    """One provider as its SDK sees the gateway: where the SDK puts its credential, and how the
    provider's errors look (:mod:`app.wire`, which the simulator speaks too)."""

    wire: ErrorShape
    client_key: Callable[[Headers], str]

    @property
    def provider(self) -> str:
        return self.wire.name

    def refusal(self, status: int, detail: str, error_type: str, headers: dict[str, str]) -> Response[Any]:
        """The gateway's own refusal in the provider's error shape; its request id is the trace id."""
        span = trace.get_current_span().get_span_context()
        request_id = format(span.trace_id, "032x") if span.is_valid else None
        return self.wire.error(status, detail, request_id=request_id, headers={
            **headers, "X-Provider": self.provider, ERROR_TYPE_HEADER: error_type})

    def gateway_error(self, _: AnyRequest, error: GatewayError) -> Response[Any]:
        answer = error.upstream_answer
        if answer is not None and error.error_type is not ErrorType.AUTH:
            added = {name: value for name, value in error_headers(error).items() if name.lower() not in answer.headers}
            return _relay(answer, {**added, ERROR_TYPE_HEADER: error.error_type.value})
        return self.refused(error)

    def refused(self, error: GatewayError) -> Response[Any]:
        """The gateway's own refusal of a call (or a live session's handshake) in the provider's shape."""
        status = error.status
        if error.error_type is ErrorType.INVALID_INPUT and status != 413:
            status = 422  # what each SDK raises as its own "unprocessable" error
        return self.refusal(status, error.detail, error.error_type.value, error_headers(error))

    def unauthorized(self, detail: str) -> Response[Any]:
        """A missing or wrong gateway client key, as the provider answers a bad key."""
        return self.refusal(self.wire.auth_status, detail, HTTP_ERROR_TYPES[401], {})

    def http_error(self, _: AnyRequest, exc: HTTPException) -> Response[Any]:
        """Refusals made outside the door: the client key, unknown paths, bodies Litestar refused."""
        status = exc.status_code
        error_type = HTTP_ERROR_TYPES.get(status, "http_error")
        if status == 401:
            return self.unauthorized(str(exc.detail))
        if status in (400, 415):
            status = 422
        return self.refusal(status, str(exc.detail), error_type, {})

    async def guard(self, connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        """The gateway client key in the SDK's own credential, when ``GATEWAY_API_KEYS`` is set."""
        if not check_client(connection.app.state.service_manager.settings, self.client_key(connection.headers)):
            raise NotAuthorizedException(f"a valid gateway client key is required as the {self.provider} SDK's key")

    def router(self, path: str, handlers: list[Any]) -> Router:
        """The provider's routes, plus a 404 in its shape for any other path under ``path``."""

        @route("/{other:path}", http_method=OTHER_METHODS, include_in_schema=False)
        async def unknown(request: AnyRequest) -> None:
            raise NotFoundException(f"the gateway relays no {request.method} {request.url.path} to {self.provider}")

        @route(sorted({p for handler in handlers for p in handler.paths}), http_method=NOT_POST,
               include_in_schema=False)
        async def wrong_method(request: AnyRequest) -> None:
            raise MethodNotAllowedException(f"{request.url.path} takes POST only")

        return Router(path, route_handlers=[*handlers, unknown, wrong_method], guards=[self.guard],
                      include_in_schema=False, middleware=[counted_refusals],
                      exception_handlers=noted({
                          GatewayError: self.gateway_error, HTTPException: self.http_error,
                          ValidationException: self.http_error}))


def _relay(answer: UpstreamAnswer, extra: dict[str, str]) -> Response[bytes]:
    """A provider's answer as it was sent (its body, status and the headers the caller may see)."""
    headers = {name: value for name, value in answer.headers.items() if name != "content-type"}
    return Response(answer.body, status_code=answer.status, headers={**headers, **extra},
                    media_type=answer.headers.get("content-type", "application/json"))


def _answered(answer: UpstreamAnswer, provider: str) -> Response[bytes]:
    return _relay(answer, {"X-Provider": provider})


def _streamed(stream: RelayedStream, provider: str) -> Stream:
    headers = {name: value for name, value in stream.headers.items() if name != "content-type"}
    return relayed(stream.chunks, stream.headers.get("content-type", "application/octet-stream"),
                   {**headers, "X-Provider": provider})


async def _json(request: AnyRequest) -> tuple[bytes, dict[str, Any]]:
    """The body as the SDK sent it, and parsed (to validate it and name the operation)."""
    raw = await request.body()
    return raw, json_object(raw)


def _services(request: AnyRequest) -> Services:
    return manager(request).services


def _config(request: AnyRequest, provider: str) -> ServiceConfig:
    return manager(request).settings.get_service_config(provider)


async def _checked(source: SpooledFile, declared: str | None, cfg: ServiceConfig) -> Audio:
    """The upload checked against the provider's audio limits (in a worker thread: it reads the file)."""
    return await asyncio.to_thread(lambda: check_audio(source, sniffed_type(source, declared), cfg))


# -- Sarvam ------------------------------------------------------------------------------------


@post("/translate", status_code=200, guards=[json_body], opt=door("sarvam", "translate"))
async def sarvam_translate(request: AnyRequest) -> Response[bytes]:
    raw, body = await _json(request)
    return _answered(await _services(request).sarvam_translate.relay(raw, body), "sarvam")


@post("/text-to-speech", status_code=200, guards=[json_body], opt=door("sarvam", "tts"))
async def sarvam_tts(request: AnyRequest) -> Response[bytes]:
    raw, body = await _json(request)
    return _answered(await _services(request).sarvam_tts.relay_speech(raw, body), "sarvam")


@post("/text-to-speech/stream", status_code=200, guards=[json_body], opt=door("sarvam", "tts"))
async def sarvam_tts_stream(request: AnyRequest) -> Stream:
    raw, body = await _json(request)
    return _streamed(await _services(request).sarvam_tts.relay_stream(raw, body), "sarvam")


@post("/speech-to-text", status_code=200, opt=door("sarvam", "stt"))
async def sarvam_stt(request: AnyRequest) -> Response[bytes]:
    """The form is spooled as it arrives; its fields are relayed as sent, with the checked audio."""
    async with received_form(request, upload_spool(request)) as form:
        audio = await _checked(form.audio(), form.content_type, _config(request, "sarvam"))
        answer = await _services(request).sarvam_stt.relay(audio, form.fields, form.filename)
    return _answered(answer, "sarvam")


# -- Deepgram ----------------------------------------------------------------------------------


@post("/v1/listen", status_code=200, opt=door("deepgram", "stt"))
async def deepgram_listen(request: AnyRequest) -> Response[bytes]:
    """The raw audio body is spooled as it arrives and relayed with the query as sent."""
    declared = request.headers.get("content-type")
    if (declared or "").split(";")[0].strip().lower() == "application/json":
        raise invalid("the gateway transcribes audio sent in the body, not audio at a URL (its limits "
                      "could not be checked)", 422)
    async with received_body(request, upload_spool(request)) as source:
        audio = await _checked(source, declared, _config(request, "deepgram"))
        params = list(request.query_params.multi_items())
        answer = await _services(request).deepgram_stt.relay(audio, params, audio.content_type)
    return _answered(answer, "deepgram")


@post("/v1/speak", status_code=200, guards=[json_body], opt=door("deepgram", "tts"))
async def deepgram_speak(request: AnyRequest) -> Stream:
    raw, body = await _json(request)
    params = list(request.query_params.multi_items())
    return _streamed(await _services(request).deepgram_tts.relay_stream(raw, body, params), "deepgram")


# -- OpenAI: the /v1 handlers, which already speak its wire format -------------------------------


@post("/v1/chat/completions", status_code=200, guards=[json_body], opt=door("openai", "chat"))
async def openai_chat_completions(request: AnyRequest) -> Response[Any] | Stream:
    return await openai_chat(request)


@post("/v1/embeddings", status_code=200, guards=[json_body], opt=door("openai", "embeddings"))
async def openai_embeddings_route(request: AnyRequest) -> Response[Any]:
    return await openai_embeddings(request)


SARVAM_DROPIN = DropIn(SARVAM_ERRORS, sarvam_key)
DEEPGRAM_DROPIN = DropIn(DEEPGRAM_ERRORS, deepgram_key)
OPENAI_DROPIN = DropIn(OPENAI_ERRORS, _openai_key)


def routers() -> list[Router]:
    """The drop-in routes; upload routes get their body limits from the app (see ``main``)."""
    return [
        SARVAM_DROPIN.router("/sarvam", [sarvam_translate, sarvam_tts, sarvam_tts_stream, sarvam_stt]),
        DEEPGRAM_DROPIN.router("/deepgram", [deepgram_listen, deepgram_speak]),
        OPENAI_DROPIN.router("/openai", [openai_chat_completions, openai_embeddings_route]),
    ]
