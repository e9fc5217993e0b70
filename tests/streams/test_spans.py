"""A live session's trace: the handshake's server span (``GET /deepgram/v1/listen``, 101, lasting
the session) with one provider span under it, whose events are the first result and the close; a
failed session's log event."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from app.stack.logsink import attributes
from tests.gateway import running_gateway
from tests.logs.capture import logged_gateway
from tests.support import wait_until
from tests.telemetry.otlp_receiver import Received, http_receiver

from . import clients, raw


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Received]:
    with http_receiver() as (endpoint, received):
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
        yield received


def _spans(received: Received) -> list[Span]:
    return [span for _, span in received.spans()]


async def test_one_span_per_session_under_the_server_span(receiver: Received) -> None:
    with running_gateway() as gw:
        await clients.deepgram_transcripts(gw.url, 1.5)
        gw.clear_upstream_requests()
    spans = wait_until(lambda: [s for s in _spans(receiver) if s.name == "stt deepgram"] and _spans(receiver), 10,
                       "the session's spans")
    [server] = [s for s in spans if s.kind == Span.SPAN_KIND_SERVER and s.name == "GET /deepgram/v1/listen"]
    [session] = [s for s in spans if s.name == "stt deepgram"]
    assert session.kind == Span.SPAN_KIND_CLIENT
    assert session.parent_span_id == server.span_id
    assert attributes(server.attributes)["http.response.status_code"] == 101
    assert [event.name for event in session.events] == ["first_result", "close"]
    assert attributes(session.events[1].attributes)["code"] == 1000
    assert server.start_time_unix_nano <= session.start_time_unix_nano
    assert session.end_time_unix_nano <= server.end_time_unix_nano


async def test_a_failed_session_is_one_log_event() -> None:
    with logged_gateway() as (gw, lines):
        gw.fault("deepgram", operation="stt", truncate=True)
        async with raw.open_session(gw.url) as socket:
            await socket.send(b"\0" * 32000)
            await raw.closed(socket)
        [failed] = lines.wait(lambda: lines.events("provider.call.failed", provider="deepgram") or None)
        assert failed["operation"] == "stt"
        assert failed["error_type"] == "connection"
