"""How upstream failures become error types: a provider's HTTP status and error body, and
anything its client can raise, mapped onto the closed set of :class:`~app.calls.ErrorType`."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from typing import Any

import aiohttp
import httpx2

from ..calls import ErrorType, GatewayError, UpstreamAnswer


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
