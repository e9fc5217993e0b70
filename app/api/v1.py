"""The ``/v1`` provider endpoints: translate, TTS, STT, OpenAI-compatible chat and embeddings, RAG."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from litestar import Request, Response, Router, post
from litestar.background_tasks import BackgroundTask
from litestar.connection import ASGIConnection
from litestar.exceptions import HTTPException, NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler
from litestar.params import JSONBody
from litestar.response import Stream
from opentelemetry import trace

from ..calls import Relay, invalid
from ..providers.rag import Document
from ..providers.results import Served
from ..providers.service_manager import ServiceManager
from ..resilience.auth import bearer_token, key_matches
from .door import choose, counted_refusals, door, noted
from .problems import EXCEPTION_HANDLERS, problem_spec
from .uploads import UploadSpool, received_form
from .v1_operations import ChatOperation, EmbeddingsOperation, STTOperation


class TranslateRequest(msgspec.Struct, forbid_unknown_fields=False):
    input: str
    target_language_code: str
    source_language_code: str = "auto"


class TranslateResponse(msgspec.Struct):
    translated_text: str
    source_language_code: str
    provider: str
    request_id: str


class TTSRequest(msgspec.Struct):
    text: str
    language_code: str
    speaker: str | None = None
    provider: str | None = None


class STTResponse(msgspec.Struct):
    transcript: str
    language_code: str
    provider: str
    audio_duration_sec: float


class RAGDocument(msgspec.Struct):
    id: str
    text: str
    metadata: dict[str, Any] | None = None


class IngestRequest(msgspec.Struct):
    documents: list[RAGDocument]


class IngestResponse(msgspec.Struct):
    ingested: int


class QueryRequest(msgspec.Struct):
    query: str
    top_k: int = 4


class Source(msgspec.Struct):
    id: str
    score: float
    text: str


class QueryResponse(msgspec.Struct):
    answer: str | None
    sources: list[Source]
    degraded: bool
    degraded_reason: str | None = None


def manager(request: Request[Any, Any, Any]) -> ServiceManager:
    found: ServiceManager = request.app.state.service_manager
    return found


def served_headers(served: Served[object]) -> dict[str, str]:
    headers = {"X-Provider": served.provider}
    if served.fallback:
        headers["X-Fallback"] = "true"
    return headers


def request_id(request: Request[Any, Any, Any]) -> str:
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else format(id(request), "x")


async def client_auth(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """``Authorization: Bearer <key>`` when ``GATEWAY_API_KEYS`` is set (constant-time compare).

    Guards are ``async`` because Litestar runs a plain function guard in a worker thread.
    """
    keys = connection.app.state.service_manager.settings.gateway_api_keys
    if keys and not key_matches(bearer_token(connection.headers.get("authorization", "")), keys):
        raise NotAuthorizedException("a valid client API key is required: Authorization: Bearer <key>",
                                     headers={"WWW-Authenticate": 'Bearer realm="gateway"'})


async def json_body(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """JSON endpoints answer 415 to a body of another media type instead of guessing."""
    media_type = connection.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise HTTPException(status_code=415, detail=f"send the body as application/json, not {media_type!r}")


@post("/translate", status_code=200, guards=[json_body], opt=door("sarvam", "translate"),
      summary="Translate text (Sarvam; falls back to OpenAI chat)")
async def translate(request: Request[Any, Any, Any], data: JSONBody[TranslateRequest]) -> Response[TranslateResponse]:
    served = await manager(request).fallbacks.translate(data.input, data.source_language_code,
                                                        data.target_language_code)
    body = TranslateResponse(served.value.translated_text, served.value.source_language_code,
                             served.provider, request_id(request))
    return Response(body, headers=served_headers(served))


@post("/tts", status_code=200, guards=[json_body], opt=door("sarvam", "tts"),
      summary="Text to speech, streamed as audio/wav (Sarvam or Deepgram)",
      response_description="WAV audio, streamed as it is produced")
async def tts(request: Request[Any, Any, Any], data: JSONBody[TTSRequest]) -> Stream:
    choose(request, data.provider, "tts")
    served = await manager(request).fallbacks.tts(data.text, data.language_code, data.speaker, data.provider)
    return relayed(served.value, "audio/wav", served_headers(served))


def upload_spool(request: Request[Any, Any, Any]) -> UploadSpool:
    found: UploadSpool = request.app.state.upload_spool
    return found


@post("/stt", status_code=200, opt=door("sarvam", "stt"),
      summary="Speech to text from a WAV or MP3 upload (Sarvam or Deepgram)",
      operation_class=STTOperation, responses={status: problem_spec(status) for status in (408, 507)})
async def stt(request: Request[Any, Any, Any]) -> Response[STTResponse]:
    """The upload is spooled as it arrives and streamed to the provider from the spool."""
    gateway = manager(request)
    async with received_form(request, upload_spool(request)) as form:
        provider = form.text("provider")
        choose(request, provider, "stt")
        language = form.required("language_code")
        audio = await asyncio.to_thread(gateway.fallbacks.check_audio, form.audio(), form.content_type,
                                        provider)
        served = await gateway.fallbacks.stt(audio, language, provider, form.filename)
    body = STTResponse(served.value.transcript, served.value.language_code, served.provider,
                       round(audio.duration_sec, 3))
    return Response(body, headers=served_headers(served))


def relayed(chunks: Relay, media_type: str, headers: dict[str, str]) -> Stream:
    """A streamed answer whose relay is closed once the response is over, however it ended: a
    client that leaves mid-stream cancels the sending without closing the iterator, and the relay
    must still end its call and free the provider's bulkhead slot."""
    return Stream(chunks, media_type=media_type, headers=headers, background=BackgroundTask(chunks.aclose))


def json_object(raw: bytes) -> dict[str, Any]:
    try:
        body = msgspec.json.decode(raw)
    except msgspec.DecodeError as error:
        raise invalid(f"request body is not valid JSON: {error}") from None
    if not isinstance(body, dict):
        raise invalid("request body must be a JSON object")
    return body


async def openai_chat(request: Request[Any, Any, Any]) -> Response[Any] | Stream:
    """OpenAI chat in OpenAI's own wire format (here and on the drop-in ``/openai/v1`` route)."""
    body = json_object(await request.body())
    service = manager(request).services.openai_chat
    headers = {"X-Provider": "openai"}
    if body.get("stream"):
        events = await service.stream(body)
        return relayed(events, "text/event-stream", {**headers, "Cache-Control": "no-cache"})
    return Response((await service.complete(body)).body, headers=headers)


async def openai_embeddings(request: Request[Any, Any, Any]) -> Response[Any]:
    """OpenAI embeddings in OpenAI's own wire format (here and on the drop-in ``/openai/v1`` route)."""
    body = json_object(await request.body())
    result = await manager(request).services.openai_embeddings.create(body)
    return Response(result.body, headers={"X-Provider": "openai"})


@post("/chat/completions", status_code=200, guards=[json_body], opt=door("openai", "chat"),
      summary="OpenAI-compatible chat completions (JSON or server-sent events)", operation_class=ChatOperation)
async def chat_completions(request: Request[Any, Any, Any]) -> Response[Any] | Stream:
    return await openai_chat(request)


@post("/embeddings", status_code=200, guards=[json_body], opt=door("openai", "embeddings"),
      summary="OpenAI-compatible embeddings (float or base64)", operation_class=EmbeddingsOperation)
async def embeddings(request: Request[Any, Any, Any]) -> Response[Any]:
    return await openai_embeddings(request)


@post("/rag/documents", status_code=200, guards=[json_body], opt=door("rag", "ingest"),
      summary="Add documents to the retrieval store")
async def rag_documents(request: Request[Any, Any, Any], data: JSONBody[IngestRequest]) -> Response[IngestResponse]:
    documents = [Document(d.id, d.text, d.metadata) for d in data.documents]
    count = await manager(request).services.rag_ingest.ingest(documents)
    return Response(IngestResponse(count), headers={"X-Provider": "rag"})


@post("/rag/query", status_code=200, guards=[json_body], opt=door("rag", "query"),
      summary="Answer from the retrieved documents (passages only, flagged degraded, "
                            "when chat is unavailable)")
async def rag_query(request: Request[Any, Any, Any], data: JSONBody[QueryRequest]) -> Response[QueryResponse]:
    result = await manager(request).services.rag_query.query(data.query, data.top_k)
    sources = [Source(p.id, p.score, p.text) for p in result.sources]
    body = QueryResponse(result.answer, sources, result.degraded, result.degraded_reason)
    return Response(body, headers={"X-Provider": "rag"})


router = Router(
    path="/v1",
    route_handlers=[translate, tts, stt, chat_completions, embeddings, rag_documents, rag_query],
    guards=[client_auth],
    middleware=[counted_refusals],
    exception_handlers=noted(EXCEPTION_HANDLERS),
    tags=["providers"],
)
