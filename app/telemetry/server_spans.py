"""Server spans, one per HTTP request.

They come from :class:`ServerSpans`, not Litestar's ``OpenTelemetryPlugin`` (which wraps
``opentelemetry-instrumentation-asgi``): the same span, named by the route template rather than
the raw path, for less CPU per request (bench/README.md, "Overhead"), and without the ``http.server.*`` metrics,
which nothing reads (the provider metrics are the contract).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from opentelemetry import context, propagate, trace
from opentelemetry.semconv.attributes.client_attributes import CLIENT_ADDRESS
from opentelemetry.semconv.attributes.error_attributes import ERROR_TYPE
from opentelemetry.semconv.attributes.http_attributes import (
    HTTP_REQUEST_METHOD,
    HTTP_REQUEST_METHOD_ORIGINAL,
    HTTP_RESPONSE_STATUS_CODE,
    HTTP_ROUTE,
    HttpRequestMethodValues,
)
from opentelemetry.semconv.attributes.network_attributes import NETWORK_PROTOCOL_VERSION
from opentelemetry.semconv.attributes.url_attributes import URL_PATH, URL_SCHEME
from opentelemetry.trace import SpanKind, Status, StatusCode

UNTRACED_ROUTES: Final = frozenset({"/metrics"})
"""Route templates that get no server span (Prometheus scraping every few seconds is noise)."""
HTTP_METHODS: Final = frozenset(m.value for m in HttpRequestMethodValues if m.value != "_OTHER")
TRACE_RESPONSE: Final = b"traceresponse"
"""The response header that reports the request's trace (W3C Trace Context Level 2's draft
``traceresponse``, as OpenTelemetry's ``TraceResponsePropagator`` writes it)."""


def trace_response(span: trace.SpanContext) -> bytes:
    """``00-{trace id}-{server span id}-{flags}``: the ``traceparent`` format, naming the server span."""
    return f"00-{span.trace_id:032x}-{span.span_id:016x}-{span.trace_flags:02x}".encode("ascii")


class ServerSpans:
    """ASGI middleware: one ``SERVER`` span per HTTP request, named ``{method} {route template}``.

    Installed as Litestar app middleware, so it runs after routing (``scope["path_template"]``
    is known; requests that match no route get no span). It continues the caller's trace from
    the propagators' headers (``traceparent``), carries the HTTP semantic-convention attributes,
    marks 5xx answers and exceptions as errors, and makes no per-message send/receive spans. Its
    answer reports the trace in a ``traceresponse`` header (a problem answer's ``trace_id`` too).
    """

    def __init__(self, app: ASGIApp, tracer: trace.Tracer, mask: Callable[[str], str],
                 untraced: frozenset[str] = UNTRACED_ROUTES) -> None:
        self.app = app
        self.tracer = tracer
        self.mask = mask
        """Masks secrets in the path (:class:`app.masking.SecretMask`): a client may send one there."""
        self.untraced = untraced
        self.fields = frozenset(name.encode("latin-1") for name in propagate.get_global_textmap().fields)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = scope.get("path_template", "")
        if scope["type"] != ScopeType.HTTP or route in self.untraced:
            await self.app(scope, receive, send)
            return
        carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"] if k in self.fields}
        parent = propagate.extract(carrier) if carrier else None
        method = scope["method"]
        attributes: dict[str, Any] = {
            HTTP_REQUEST_METHOD: method, HTTP_ROUTE: route, URL_PATH: self.mask(scope["path"]),
            URL_SCHEME: scope["scheme"], NETWORK_PROTOCOL_VERSION: scope["http_version"],
        }
        if method not in HTTP_METHODS:
            attributes[HTTP_REQUEST_METHOD], attributes[HTTP_REQUEST_METHOD_ORIGINAL] = "_OTHER", method
        if client := scope.get("client"):
            attributes[CLIENT_ADDRESS] = client[0]
        span = self.tracer.start_span(f"{attributes[HTTP_REQUEST_METHOD]} {route}", parent, SpanKind.SERVER,
                                      attributes)
        token = context.attach(trace.set_span_in_context(span, parent))
        status = 0
        reported = (TRACE_RESPONSE, trace_response(span.get_span_context()))

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), reported]}
            await send(message)

        error: str | None = None
        try:
            await self.app(scope, receive, send_status)
        except BaseException as exc:
            error = type(exc).__qualname__
            raise
        finally:
            context.detach(token)
            if status:
                span.set_attribute(HTTP_RESPONSE_STATUS_CODE, status)
            if error is None and status >= 500:
                error = str(status)
            if error is not None:
                span.set_attribute(ERROR_TYPE, error)
                span.set_status(Status(StatusCode.ERROR))
            span.end()
