"""Refusals made before the call pipeline pass the one door too.

Some invalid input is refused before a provider call starts: a body that is not a JSON object or
does not fit the route's schema, a media type the route does not take, a form without its fields,
audio over the limits, a language no provider speaks. Each route names the operation it serves
(``opt=door(provider, operation)``: the operation's first candidate provider) and the
:func:`counted_refusals` middleware hands every such refusal to that operation's pipeline as a
validation failure, so that it is counted like any other (``provider_client_rejections_total``
with ``reason="invalid_input"``, the ``rejected.invalid_input`` span event, the in-app recorder).
The routes' exception handlers are wrapped in :func:`noting`.
A handler that learns which provider the caller chose says so with :func:`choose`. The answer the
caller gets is the original exception's, untouched: the pipeline sees a copy.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from typing import Any, NoReturn

from litestar import Request, Response
from litestar.exceptions import HTTPException
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from ..calls import ErrorType, GatewayError, ServiceKey, invalid
from .problems import HTTP_ERROR_TYPES

ExceptionHandler = Callable[[Request[Any, Any, Any], Any], Response[Any]]

DOOR = "door"
"""The route option (and request state) naming whose door a refusal passes."""
INVALID_INPUT = ErrorType.INVALID_INPUT.value
REFUSAL = "door.refusal"
"""Request state: the detail of a refusal an exception handler answered, until it is counted."""


def door(provider: str, operation: str) -> dict[str, Any]:
    """A route's ``opt``: refusals before its call count under ``provider.operation``."""
    return {DOOR: ServiceKey(provider, operation)}


def choose(request: Request[Any, Any, Any], provider: str | None, operation: str) -> None:
    """The caller named ``provider``: refusals from now on count under it (when it offers ``operation``)."""
    key = ServiceKey(provider or "", operation)
    if key in request.app.state.service_manager.by_key:
        request.state[DOOR] = key


def refused(exc: BaseException) -> str | None:
    """The detail of a refusal of invalid input that has not passed the door yet, else ``None``."""
    if isinstance(exc, GatewayError):
        return exc.detail if exc.error_type is ErrorType.INVALID_INPUT and exc.provider is None else None
    if isinstance(exc, HTTPException) and HTTP_ERROR_TYPES.get(exc.status_code) == INVALID_INPUT:
        return str(exc.detail)
    return None


def noting(handler: ExceptionHandler) -> ExceptionHandler:
    """An exception handler that also notes a refusal for :func:`counted_refusals` to count.

    Litestar answers a route's exceptions inside its middleware (a handler that may not await),
    so the handler notes the refusal and the middleware counts it before the answer is sent.
    """

    def handle(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
        detail = refused(exc)
        if detail is not None:
            request.scope.setdefault("state", {})[REFUSAL] = detail
        return handler(request, exc)

    return handle


def noted(handlers: Mapping[type[Exception] | int, ExceptionHandler]) -> dict[type[Exception] | int, Any]:
    """A router's ``exception_handlers``, each wrapped in :func:`noting`."""
    return {kind: noting(handler) for kind, handler in handlers.items()}


async def count(scope: Scope, detail: str) -> None:
    """Pass a refusal (as a copy) through the door of the operation the route or handler named."""
    state = scope.get("state", {})
    key = state.get(DOOR) or scope["route_handler"].opt.get(DOOR)
    if not isinstance(key, ServiceKey):
        return
    manager = scope["app"].state.service_manager
    service = manager.by_key[key]

    def check() -> NoReturn:
        raise invalid(detail)

    async def never(_: object) -> NoReturn:
        raise AssertionError("a refusal never calls the provider")  # pragma: no cover

    with contextlib.suppress(GatewayError):
        await manager.pipeline.call(service.spec(), never, validate=check)


def counted_refusals(app: ASGIApp) -> ASGIApp:
    """Middleware for provider routes: a refusal noted while answering passes the door before the
    answer's first byte is sent (so ``/metrics`` shows it by the time the caller has the answer)."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                detail = scope.get("state", {}).pop(REFUSAL, None)
                if detail is not None:
                    await count(scope, detail)
            await send(message)

        await app(scope, receive, counting_send)

    return middleware
