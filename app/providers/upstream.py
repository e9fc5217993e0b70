"""Each provider's HTTP client, and how upstream failures become error types."""

from __future__ import annotations

import json
import math
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

import aiohttp
import httpx2
from openai import DefaultAioHttpClient

# The aiohttp transport the OpenAI SDK ships for httpx2 (DefaultAioHttpClient's own), taken
# directly only to give it a connector of ours.
from openai._vendor.httpx_aiohttp import AiohttpTransport

from ..resilience.errors import ErrorType, GatewayError, UpstreamAnswer
from ..telemetry import Telemetry

if TYPE_CHECKING:  # base imports this module
    from .base import CallContext


CURRENT_CALL: ContextVar[CallContext | None] = ContextVar("provider_call", default=None)
"""The provider call whose attempt runs in this task (set by the pipeline around each attempt)."""

HEALTH_CHECK_HEADROOM = 2
"""Connections each provider's pool keeps beyond ``P_MAX_CONCURRENCY``, for active health checks
(which take no bulkhead slot) and for a stream whose slot is freed just before its connection."""


class _TimedConnector(aiohttp.TCPConnector):
    """Adds the time the current call spends getting a connection (a free pooled one, or a new
    one) to its ``connect_wait``: gateway time before the request is written, not the provider's."""

    async def connect(self, req: aiohttp.ClientRequest, traces: list[Any], timeout: aiohttp.ClientTimeout,
                      ) -> aiohttp.connector.Connection:
        call = CURRENT_CALL.get()
        started = time.perf_counter()
        try:
            return await super().connect(req, traces, timeout)
        finally:
            if call is not None:
                call.connect_wait += time.perf_counter() - started


def make_http_client(telemetry: Telemetry, max_connections: int) -> httpx2.AsyncClient:
    """One provider's pooled ``httpx2`` client on the aiohttp transport (the fastest measured
    here), with at most ``max_connections`` connections and the OpenTelemetry HTTP client
    instrumentation attached to it."""
    limits = httpx2.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
    transport = AiohttpTransport(limits=limits)

    def session() -> aiohttp.ClientSession:  # made on first use, inside the running event loop
        return aiohttp.ClientSession(connector=_TimedConnector(
            limit=max_connections, keepalive_timeout=limits.keepalive_expiry, ssl=transport.ssl_context))

    transport.client = session
    client: httpx2.AsyncClient = DefaultAioHttpClient(
        transport=transport,
        timeout=httpx2.Timeout(None),  # the pipeline owns timeouts
        follow_redirects=False,
    )
    telemetry.instrument_http_client(client)
    return client


def wav_seconds(size: int, sample_rate: int) -> float:
    """Seconds in a 16-bit mono PCM WAV of ``size`` bytes (44-byte header)."""
    return max(0, size - 44) / (2 * sample_rate)


def check_wav_start(provider: str, chunk: bytes) -> None:
    """Raise ``upstream_malformed`` unless the first bytes of a streamed WAV are its RIFF header."""
    if not chunk.startswith(b"RIFF"):
        raise GatewayError(ErrorType.UPSTREAM_MALFORMED, f"{provider} sent audio without a WAV header")


async def relay_wav(
    provider: str, response: httpx2.Response, sample_rate: int, ctx: CallContext,
) -> AsyncIterator[bytes]:
    """A streamed WAV answer's chunks as they arrive, after its status and RIFF header are
    checked; the seconds of audio relayed go to ``ctx.audio_seconds`` at the end."""
    await check_response(provider, response)
    size = 0
    async for chunk in response.aiter_bytes():
        if size == 0 and chunk:
            check_wav_start(provider, chunk)
        size += len(chunk)
        yield chunk
    ctx.audio_seconds = wav_seconds(size, sample_rate)


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header given in seconds (dates are rare from APIs)."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return float(max(1, math.ceil(seconds))) if math.isfinite(seconds) and seconds >= 0 else None


def _error_body(body: bytes) -> dict[str, Any]:
    try:
        data: Any = json.loads(body)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def upstream_message(body: bytes) -> str:
    """A short, safe summary of a provider's error body (its message, never headers)."""
    data = _error_body(body)
    error = data.get("error")
    if isinstance(error, dict):
        return str(error.get("message") or error.get("code") or "")[:300]
    if "err_msg" in data:
        return str(data["err_msg"])[:300]
    if isinstance(data.get("message"), str):
        return str(data["message"])[:300]
    return ""


def upstream_request_id(body: bytes, headers: Mapping[str, str]) -> str | None:
    """The provider's id of a request: OpenAI's ``x-request-id``, Deepgram's ``dg-request-id``,
    Sarvam's ``error.request_id`` (Deepgram repeats its id in the body too)."""
    found = headers.get("x-request-id") or headers.get("dg-request-id")
    if not found:
        data = _error_body(body)
        error = data.get("error")
        found = (error if isinstance(error, dict) else data).get("request_id")
    return str(found)[:100] if found else None


def status_error(provider: str, status: int, body: bytes, headers: Mapping[str, str]) -> GatewayError:
    """The error type of an upstream HTTP status."""
    message = upstream_message(body)
    said = f": {message}" if message else ""
    facts: dict[str, Any] = {"upstream_status": status, "upstream_request_id": upstream_request_id(body, headers),
                             "upstream_answer": UpstreamAnswer.of(status, body, headers)}
    if status == 429:
        return GatewayError(ErrorType.UPSTREAM_RATE_LIMITED, f"{provider} rate limited the gateway{said}",
                            retry_after=retry_after_seconds(headers.get("retry-after")) or 1.0, **facts)
    if status in (401, 403):
        return GatewayError(ErrorType.AUTH, f"{provider} rejected the gateway's credentials (HTTP {status})", **facts)
    if status >= 500:
        return GatewayError(ErrorType.UPSTREAM_5XX, f"{provider} answered HTTP {status}{said}", **facts)
    return GatewayError(ErrorType.UPSTREAM_4XX, f"{provider} rejected the request (HTTP {status}){said}", **facts)


async def check_response(provider: str, response: httpx2.Response) -> None:
    """Raise the categorised error of a non-2xx answer (reading its body first if streamed)."""
    if response.status_code < 400:
        return
    body = await response.aread()
    raise status_error(provider, response.status_code, body, response.headers)


def categorize(exc: BaseException, provider: str) -> GatewayError:
    """Map anything an upstream call can raise onto the closed set of error types."""
    if isinstance(exc, GatewayError):
        return exc
    cause = exc.__cause__
    if any(isinstance(c, aiohttp.ClientConnectorError) and not isinstance(c, TimeoutError) for c in _causes(exc)):
        # The vendored aiohttp transport maps a refused connection to ConnectTimeout.
        return GatewayError(ErrorType.CONNECTION, f"could not reach {provider}")
    if isinstance(exc, TimeoutError | httpx2.TimeoutException):
        return GatewayError(ErrorType.TIMEOUT, f"{provider} did not answer in time")
    if isinstance(exc, httpx2.ReadError) and isinstance(cause, aiohttp.ClientPayloadError):
        return GatewayError(ErrorType.UPSTREAM_MALFORMED, f"{provider} ended its answer early")
    if isinstance(exc, httpx2.RemoteProtocolError):
        return GatewayError(ErrorType.UPSTREAM_MALFORMED, f"{provider} broke the HTTP protocol")
    if isinstance(exc, httpx2.TransportError | aiohttp.ClientError | OSError):
        return GatewayError(ErrorType.CONNECTION, f"could not reach {provider}")
    return GatewayError(ErrorType.UPSTREAM_MALFORMED, f"{provider} sent an answer the gateway cannot read")


def _causes(exc: BaseException) -> Iterator[BaseException]:
    found: BaseException | None = exc
    while found is not None:
        yield found
        found = found.__cause__

