"""Server spans from :class:`app.telemetry.ServerSpans`, over real HTTP: named by the route
template, HTTP semantic-convention attributes, the caller's trace continued, 5xx as errors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from litestar import Litestar, get
from litestar.exceptions import HTTPException
from litestar.params import FromPath
from litestar.response import Stream
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from app.config import load_settings
from app.telemetry import Telemetry
from tests.support import live_server, wait_until

from .conftest import attrs

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


@get("/items/{item_id:int}", sync_to_thread=False)
def item(item_id: FromPath[int]) -> dict[str, Any]:
    """Answers with the trace id it runs under, as the gateway's handlers do."""
    context = trace.get_current_span().get_span_context()
    return {"id": item_id, "trace_id": format(context.trace_id, "032x")}


@get("/broken", sync_to_thread=False)
def broken() -> None:
    raise RuntimeError("handler bug")


@get("/teapot", sync_to_thread=False)
def teapot() -> None:
    raise HTTPException(status_code=418, detail="short and stout")


@get("/stream", sync_to_thread=False)
def stream() -> Stream:
    return Stream(iter([b"a", b"b"]), media_type="text/plain")


@pytest.fixture
def served() -> Iterator[tuple[httpx.Client, InMemorySpanExporter]]:
    spans = InMemorySpanExporter()
    telemetry = Telemetry(load_settings({}), span_exporter=spans)
    app = Litestar([item, broken, teapot, stream], middleware=telemetry.server_middleware(), openapi_config=None)
    with live_server(app) as server, httpx.Client(base_url=server.url, timeout=10) as client:
        yield client, spans
    telemetry.shutdown()


def _finished(spans: InMemorySpanExporter, count: int) -> list[ReadableSpan]:
    """The finished spans once there are ``count`` (a span ends just after its response)."""
    wait_until(lambda: len(spans.get_finished_spans()) >= count, 5, f"{count} finished spans", interval=0.01)
    return list(spans.get_finished_spans())


def _only(spans: InMemorySpanExporter) -> ReadableSpan:
    [span] = _finished(spans, 1)
    return span


def test_span_is_named_by_the_route_template_with_http_attributes(
    served: tuple[httpx.Client, InMemorySpanExporter],
) -> None:
    client, spans = served
    response = client.get("/items/42", params={"secret": "x"})
    assert response.status_code == 200

    span = _only(spans)
    assert (span.name, span.kind) == ("GET /items/{item_id}", SpanKind.SERVER)
    assert attrs(span) == {
        "http.request.method": "GET", "http.route": "/items/{item_id}", "url.path": "/items/42",
        "url.scheme": "http", "network.protocol.version": "1.1", "client.address": "127.0.0.1",
        "http.response.status_code": 200,
    }
    assert span.status.status_code is StatusCode.UNSET
    assert span.parent is None
    # The handler ran inside the span, so answers can name their trace.
    assert response.json()["trace_id"] == format(span.context.trace_id, "032x")


def test_the_callers_traceparent_is_continued(served: tuple[httpx.Client, InMemorySpanExporter]) -> None:
    client, spans = served
    client.get("/items/1", headers={"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"})
    span = _only(spans)
    assert format(span.context.trace_id, "032x") == CALLER_TRACE
    assert span.parent is not None and format(span.parent.span_id, "016x") == CALLER_SPAN
    assert span.parent.is_remote


def test_every_answer_reports_its_trace_in_traceresponse(served: tuple[httpx.Client, InMemorySpanExporter]) -> None:
    """``traceresponse`` names the trace and the server span, on success, on errors (where it agrees
    with the answer's own trace id) and on streams, whose headers go before the body."""
    client, spans = served
    answers = [client.get("/items/1", headers={"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"}),
               client.get("/teapot"), client.get("/stream")]
    by_name = {span.name: span for span in _finished(spans, 3)}
    for answer, name in zip(answers, ("GET /items/{item_id}", "GET /teapot", "GET /stream"), strict=True):
        context = by_name[name].context
        expected = f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"
        assert answer.headers["traceresponse"] == expected, name
    assert answers[0].headers["traceresponse"].split("-")[1] == CALLER_TRACE == answers[0].json()["trace_id"]


def test_server_errors_mark_the_span_and_client_errors_do_not(
    served: tuple[httpx.Client, InMemorySpanExporter],
) -> None:
    client, spans = served
    assert client.get("/broken").status_code == 500
    assert client.get("/teapot").status_code == 418
    failed, refused = sorted(_finished(spans, 2), key=lambda s: s.start_time or 0)

    assert failed.name == "GET /broken" and failed.status.status_code is StatusCode.ERROR
    assert attrs(failed)["error.type"] == "500" and attrs(failed)["http.response.status_code"] == 500
    assert refused.status.status_code is StatusCode.UNSET and "error.type" not in attrs(refused)
    assert attrs(refused)["http.response.status_code"] == 418


def test_a_streamed_answer_is_one_span_that_ends_after_the_body(
    served: tuple[httpx.Client, InMemorySpanExporter],
) -> None:
    client, spans = served
    assert client.get("/stream").content == b"ab"
    span = _only(spans)
    assert span.name == "GET /stream" and attrs(span)["http.response.status_code"] == 200


def test_unrouted_requests_and_disabled_telemetry_make_no_spans(
    served: tuple[httpx.Client, InMemorySpanExporter], monkeypatch: pytest.MonkeyPatch,
) -> None:
    client, spans = served
    assert client.get("/no/such/path").status_code == 404
    assert client.get("/items/7").status_code == 200
    [span] = _finished(spans, 1)
    assert span.name == "GET /items/{item_id}"  # the only one: the unrouted request made none

    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert Telemetry(load_settings({})).server_middleware() == []
