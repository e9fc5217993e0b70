"""Errors as RFC 9457 ``application/problem+json`` answers."""

from __future__ import annotations

import logging
import math
from http import HTTPStatus
from typing import Any

import msgspec
from litestar import Litestar, Request, Response
from litestar.constants import RESERVED_KWARGS
from litestar.exceptions import HTTPException, ValidationException
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from opentelemetry import trace

from ..calls import TITLES, ErrorType, GatewayError, ServiceKey
from ..resilience.auth import require_admin, require_admin_on_sim_control

log = logging.getLogger("app.api")
PROBLEM_JSON = "application/problem+json"
_TYPE_BASE = "https://gateway.local/problems/"


def problem(
    status: int, title: str, detail: str, error_type: str, *,
    headers: dict[str, str] | None = None, **extra: Any,
) -> Response[dict[str, Any]]:
    body: dict[str, Any] = {
        "type": _TYPE_BASE + error_type.replace("_", "-"),
        "title": title,
        "status": status,
        "detail": detail,
        "error_type": error_type,
    }
    span_context = trace.get_current_span().get_span_context()
    if span_context.is_valid:
        body["trace_id"] = format(span_context.trace_id, "032x")
    body.update({k: v for k, v in extra.items() if v is not None})
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def error_headers(error: GatewayError) -> dict[str, str]:
    """``Retry-After`` when the error says when to try again, and ``X-Provider``."""
    headers: dict[str, str] = {}
    if error.retry_after is not None:
        headers["Retry-After"] = str(max(1, math.ceil(error.retry_after)))
    if error.provider:
        headers["X-Provider"] = error.provider
    return headers


def gateway_error_response(error: GatewayError) -> Response[dict[str, Any]]:
    headers = error_headers(error)
    return problem(error.status, TITLES[error.error_type], error.detail, error.error_type.value,
                   headers=headers, provider=error.provider, operation=error.operation)


def _gateway_error_handler(_: Request[Any, Any, Any], exc: GatewayError) -> Response[dict[str, Any]]:
    return gateway_error_response(exc)


def _validation_handler(_: Request[Any, Any, Any], exc: ValidationException) -> Response[dict[str, Any]]:
    return problem(exc.status_code, TITLES[ErrorType.INVALID_INPUT], str(exc.detail),
                   ErrorType.INVALID_INPUT.value, errors=exc.extra or None)


HTTP_ERROR_TYPES = {400: "invalid_input", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                    405: "method_not_allowed", 408: "invalid_input", 413: "invalid_input", 415: "invalid_input",
                    507: "insufficient_storage"}
"""The ``error_type`` of an HTTP error raised outside the call pipeline (guards, routing, bodies)."""


def _http_handler(_: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    error_type = HTTP_ERROR_TYPES.get(exc.status_code, "http_error")
    return problem(exc.status_code, _reason(exc.status_code), str(exc.detail), error_type,
                   headers=dict(exc.headers or {}))


def _unexpected_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    # Logged with its stack (and trace id) here; never echoed: it may carry request data.
    log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem(HTTP_500_INTERNAL_SERVER_ERROR, "Internal error",
                   "the gateway failed unexpectedly; the trace id finds the details", "internal")


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


class Problem(msgspec.Struct, omit_defaults=True):
    """An error answer (RFC 9457), as the OpenAPI schema documents it."""

    type: str
    title: str
    status: int
    detail: str
    error_type: str
    trace_id: str | None = None
    provider: str | None = None
    operation: str | None = None
    errors: list[dict[str, Any]] | None = None
    """Which fields were invalid, for invalid input."""


PROVIDER_ERRORS = (400, 401, 413, 415, 422, 429, 502, 503, 504)
"""What a call through the door (a ``/v1`` route) can answer besides success (see DESIGN.md)."""
ADMIN_GUARDS = frozenset({require_admin, require_admin_on_sim_control})
"""Guards of operator routes: 401 without the admin key, 404 in production when none is set."""


def problem_spec(status: int) -> ResponseSpec:
    """A problem answer with ``status``, as the OpenAPI schema documents it."""
    return ResponseSpec(data_container=Problem, media_type=PROBLEM_JSON, description=_reason(status),
                        generate_examples=False)


def error_statuses(handler: HTTPRouteHandler) -> set[int]:
    """The error statuses ``handler`` can really answer: a call's, the admin guard's, and those
    of its inputs (400 for a parameter or body that does not validate, 404 for a path naming
    nothing, 413 for a body over the limit)."""
    statuses = set(PROVIDER_ERRORS) if any(isinstance(v, ServiceKey) for v in handler.opt.values()) else set()
    if ADMIN_GUARDS.intersection(handler.resolve_guards()):
        statuses |= {401, 404}
    dependencies = handler.resolve_dependencies()
    inputs = {name for name in handler.parsed_fn_signature.parameters
              if name not in dependencies and (name == "data" or name not in RESERVED_KWARGS)}
    if inputs:
        statuses.add(400)
    if "data" in inputs:
        statuses.add(413)
    if any("{" in path for path in handler.paths):
        statuses.add(404)
    return statuses


def document_problems(app: Litestar) -> None:
    """Document the problem answers of every route of ``app`` (its own handler copies), unless a
    route documents a status itself."""
    for methods in app.route_handler_method_map.values():
        for handler in methods.values():
            if isinstance(handler, HTTPRouteHandler):
                specs = {status: problem_spec(status) for status in sorted(error_statuses(handler))}
                handler.responses = {**specs, **(handler.responses or {})}


EXCEPTION_HANDLERS: dict[type[Exception] | int, Any] = {
    GatewayError: _gateway_error_handler,
    ValidationException: _validation_handler,
    HTTPException: _http_handler,
    Exception: _unexpected_handler,
}
