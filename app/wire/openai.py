"""OpenAI's wire format: its HTTP errors, ``{"error": {"message", "type", "param", "code"}}``; a
missing key is a 401 ``invalid_api_key``."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from litestar import Response

from .errors import ErrorShape

_ERRORS: dict[int, tuple[str, str, str | None]] = {
    400: ("Invalid request.", "invalid_request_error", None),
    401: ("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"),
    403: ("You are not allowed to sample from this model.", "invalid_request_error", None),
    404: (
        "The model does not exist or you do not have access to it.",
        "invalid_request_error",
        "model_not_found",
    ),
    429: (
        "Rate limit reached for requests. Please try again in 1s.",
        "requests",
        "rate_limit_exceeded",
    ),
    503: ("The engine is currently overloaded, please try again later.", "server_error", None),
}
_SERVER_ERROR = (
    "The server had an error while processing your request. Sorry about that!",
    "server_error",
    None,
)


def openai_error(
    status_code: int,
    message: str | None = None,
    *,
    headers: Mapping[str, str] | None = None,
    param: str | None = None,
    request_id: str | None = None,
) -> Response[Any]:
    default_message, kind, code = _ERRORS.get(
        status_code, _SERVER_ERROR if status_code >= 500 else _ERRORS[400]
    )
    body = {"error": {"message": message or default_message, "type": kind, "param": param, "code": code}}
    rid = request_id or new_request_id()
    return Response(body, status_code=status_code, headers={"x-request-id": rid, **(headers or {})})


def new_request_id() -> str:
    return f"req_{uuid.uuid4().hex}"


OPENAI_ERRORS = ErrorShape("openai", 401, openai_error)
