"""Secret masking never changes a log's shape (issue 23): with keys of 1, 3 and 40 characters,
every event, field and logger name is intact in the JSON lines and the OTLP log records, a key of
8 characters or more appears nowhere (logs, OTLP records, spans, answers), and each key too short
to be searched for is named once at start, by its variable."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from app.config import load_settings
from app.logging_setup import setup_logging
from app.main import create_app
from app.masking import MASK
from app.simulator import create_simulator_app
from tests.gateway import TEST_ENV
from tests.logs.capture import logged_gateway
from tests.support import LiveServer, live_server
from tests.telemetry.otlp_receiver import http_receiver

pytestmark = pytest.mark.stack

VARIABLES = ("SARVAM_API_KEY", "DEEPGRAM_API_KEY", "OPENAI_API_KEY", "GATEWAY_API_KEYS", "ADMIN_API_KEY")
KEYS = {
    # Letters and syllables of the event and field names: masked inside text, they would break them.
    1: ("k", "e", "a", "r", "t"),
    3: ("eak", "all", "ion", "ate", "ent"),
    40: tuple((f"{name}-" + "0123456789abcdefghijklmnopqrstuvwxyz" * 2)[:40]
              for name in ("sk", "dg", "oa", "gw", "adm")),
}
EVENTS = {"gateway.start", "gateway.stop", "provider.call.failed", "breaker.transition", "provider.rejected"}
"""Events the run writes, each of whose names the short keys would have broken."""
FIELDS = {"event.name", "logger", "fallback", "operation", "provider", "error_type", "attempt", "duration_ms",
          "from", "to", "reason", "path", "status", "method"}
"""Field names the run writes (the access log's among them), as they must read."""


@pytest.fixture
def simulator() -> Iterator[LiveServer]:
    with live_server(create_simulator_app()) as server:
        yield server


def names(value: Any) -> Iterator[str]:
    """Every key of a JSON value, nested ones included."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from names(item)
    elif isinstance(value, list):
        for item in value:
            yield from names(item)


@pytest.mark.parametrize("length", sorted(KEYS))
def test_masking_keeps_every_name_and_hides_every_long_key(
    length: int, simulator: LiveServer, monkeypatch: pytest.MonkeyPatch,
) -> None:
    secrets = dict(zip(VARIABLES, KEYS[length], strict=True))
    assert {len(key) for key in secrets.values()} == {length}
    client_key, admin_key = secrets["GATEWAY_API_KEYS"], secrets["ADMIN_API_KEY"]
    answers: list[str] = []
    lines = io.StringIO()
    spans = InMemorySpanExporter()
    with http_receiver() as (otlp, received):
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", otlp)
        settings = load_settings({
            **TEST_ENV, **secrets, "LOG_FORMAT": "json", "ACCESS_LOG": "true", "SARVAM_MAX_FAILURES": "2",
            "SARVAM_BASE_URL": simulator.url + "/_sim/sarvam", "DEEPGRAM_BASE_URL": simulator.url + "/_sim/deepgram",
            "OPENAI_BASE_URL": simulator.url + "/_sim/openai/v1"})
        handler = setup_logging(settings, stream=lines)
        try:
            app = create_app(settings)
            app.state.service_manager.telemetry.tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
            with live_server(app) as server, httpx.Client(base_url=server.url, timeout=30) as client:
                client.headers["authorization"] = f"Bearer {client_key}"
                httpx.put(simulator.url + "/_sim/faults", json={
                    "provider": "sarvam", "operation": "translate", "error_rate": 1.0}).raise_for_status()
                body = {"input": "hello", "source_language_code": "en-IN", "target_language_code": "hi-IN"}
                for _ in range(4):  # two failures open Sarvam's breaker; OpenAI serves each as the fallback
                    answers.append(client.post("/v1/translate", json=body).text)
                admin = {"authorization": f"Bearer {admin_key}"}
                answers.append(client.get("/health/configuration", headers=admin).text)
                # A path that carries a key: the access log and the server span write it, masked.
                # (The 404 names the unknown service to the client who sent it: not evidence.)
                assert client.get(f"/health/trends/{client_key}", headers=admin).status_code == 404
            received.wait(lambda r: {rec.event_name for _, rec in r.log_records()} >= EVENTS)
        finally:
            logging.getLogger().removeHandler(handler)

    records = [json.loads(line) for line in lines.getvalue().splitlines()]
    otlp_records = [record for _, record in received.log_records()]
    # Every name intact: the events, the loggers and the fields, in the lines and the OTLP records.
    assert {r.get("event.name") for r in records} >= EVENTS
    assert {r.event_name for r in otlp_records} >= EVENTS
    keys = {key for record in records for key in names(record)}
    assert keys >= FIELDS, FIELDS - keys
    assert not [key for key in keys if "*" in key]
    assert not [r["logger"] for r in records if "*" in r["logger"]]
    otlp_keys = {kv.key for record in otlp_records for kv in record.attributes}
    assert otlp_keys >= FIELDS - {"event.name", "logger"}, FIELDS - otlp_keys
    assert not [key for key in otlp_keys if "*" in key]
    assert not [r.event_name for r in otlp_records if "*" in r.event_name]
    scopes = {scope.scope.name for request in received.logs for rl in request.resource_logs for scope in rl.scope_logs}
    assert "app.events" in scopes and not [name for name in scopes if "*" in name]
    # A field that is a secret by its name is masked whatever it holds ("configured" here).
    [start] = [r for r in records if r.get("event.name") == "gateway.start"]
    assert start["config"]["services"]["sarvam"]["api_key"] == MASK
    # A short key is named once at start, by its variable; a long one is searched and masked.
    warned = [r for r in records if r["logger"] == "app.config" and r["level"] == "warning"]
    if length < 8:
        assert sorted(r["variable"] for r in warned) == sorted(VARIABLES)
        assert all(r["message"].startswith(r["variable"] + " is shorter than 8 characters") for r in warned)
    else:
        assert warned == []
        [access] = [r for r in records if r.get("path", "").startswith("/health/trends/")]
        assert access["path"] == f"/health/trends/{MASK}"
        paths = {span.attributes.get("url.path") for span in spans.get_finished_spans() if span.attributes}
        assert f"/health/trends/{MASK}" in paths
        texts = [lines.getvalue(), *map(str, otlp_records), *(s.to_json() for s in spans.get_finished_spans()),
                 *answers]
        leaks = [key for key in secrets.values() for text in texts if key in text]
        assert leaks == []
    assert len(spans.get_finished_spans()) > 5


def test_text_lines_keep_their_logger_names_and_name_a_short_key_once() -> None:
    """The text lines (development): a one-letter admin key masks nothing inside them."""
    with logged_gateway({"LOG_FORMAT": "text", "ADMIN_API_KEY": "e", "SARVAM_MAX_FAILURES": "1"}) as (gw, lines):
        gw.fault("sarvam", operation="translate", error_rate=1.0)
        assert gw.translate().status_code == 200  # served by the fallback
        lines.wait(lambda: "circuit breaker closed -> open" in lines.text())
    text = lines.text()
    assert MASK not in text
    assert " app.events " in text and " app.config " in text
    warnings = [line for line in text.splitlines() if " app.config " in line]
    assert len(warnings) == 1 and "WARNING" in warnings[0]
    assert warnings[0].endswith("ADMIN_API_KEY is shorter than 8 characters: the logs mask it only where a value is "
                                "exactly it, not inside other text (it would match ordinary words)")
