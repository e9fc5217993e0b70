"""Provider keys, client and admin keys and the Redis and Alertmanager passwords never show in
responses, log lines, OTLP log records, spans or metrics, whatever happens: every endpoint is
driven, through every kind of failure, so that every log event is written."""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from app.config import load_settings
from app.logging_setup import setup_logging
from app.main import create_app
from app.simulator import create_simulator_app
from tests.audio import wav
from tests.support import LiveServer, free_port, live_server
from tests.telemetry.otlp_receiver import http_receiver

from .servers import redis_server

pytestmark = pytest.mark.stack

MARK = "LEAKCHECK"
SECRETS = {
    "SARVAM_API_KEY": "sk-LEAKCHECK-sarvam-123",
    "DEEPGRAM_API_KEY": "dg-LEAKCHECK-deepgram-456",
    "OPENAI_API_KEY": "sk-LEAKCHECK-openai-789",
    "GATEWAY_API_KEYS": "gw-LEAKCHECK-client-abc",
    "ADMIN_API_KEY": "adm-LEAKCHECK-admin-def",
}
REDIS_PASSWORD = "pw-LEAKCHECK-redis-ghi"
ALERTMANAGER_PASSWORD = "pw-LEAKCHECK-alertmanager-jkl"
"""In ``ALERTMANAGER_URL``, which the failed deliveries' error names."""
EVENTS = {"provider.call.failed", "provider.rejected", "provider.hold", "breaker.transition", "alert.transition",
          "alert.delivery_failed", "state_backend.transition", "gateway.start", "gateway.stop", "log.summary"}
CLIENT = {"Authorization": "Bearer " + SECRETS["GATEWAY_API_KEYS"]}
ADMIN = {"Authorization": "Bearer " + SECRETS["ADMIN_API_KEY"]}

Request = Callable[[httpx.Client], httpx.Response]
CALLS: dict[str, tuple[str, str, Request]] = {
    "translate": ("sarvam", "translate", lambda c: c.post("/v1/translate", json={
        "input": "hello", "source_language_code": "en-IN", "target_language_code": "hi-IN"})),
    "tts sarvam": ("sarvam", "tts", lambda c: c.post("/v1/tts", json={
        "text": "hello there", "language_code": "hi-IN", "provider": "sarvam"})),
    "tts deepgram": ("deepgram", "tts", lambda c: c.post("/v1/tts", json={
        "text": "hello there", "language_code": "en-US", "provider": "deepgram"})),
    "stt sarvam": ("sarvam", "stt", lambda c: c.post("/v1/stt", files={"file": ("a.wav", wav(0.3), "audio/wav")},
                                                     data={"language_code": "hi-IN", "provider": "sarvam"})),
    "stt deepgram": ("deepgram", "stt", lambda c: c.post("/v1/stt", files={"file": ("a.wav", wav(0.3), "audio/wav")},
                                                         data={"language_code": "en-US", "provider": "deepgram"})),
    "tts fallback": ("sarvam", "tts", lambda c: c.post("/v1/tts", json={"text": "hello", "language_code": "en-IN"})),
    "chat": ("openai", "chat", lambda c: c.post("/v1/chat/completions", json={
        "messages": [{"role": "user", "content": "hi"}]})),
    "chat stream": ("openai", "chat", lambda c: c.post("/v1/chat/completions", json={
        "messages": [{"role": "user", "content": "hi"}], "stream": True})),
    "embeddings": ("openai", "embeddings", lambda c: c.post("/v1/embeddings", json={
        "model": "text-embedding-3-small", "input": ["a", "b"], "encoding_format": "base64"})),
    "rag ingest": ("openai", "embeddings", lambda c: c.post("/v1/rag/documents", json={
        "documents": [{"id": "d1", "text": "Delhi is the capital of India.", "metadata": {"k": "v"}}]})),
    "rag query": ("openai", "chat", lambda c: c.post("/v1/rag/query", json={"query": "capital of India?"})),
}
FAULTS: list[dict[str, Any]] = [
    {"hang": True}, {"error_rate": 1.0, "status_code": 401}, {"error_rate": 1.0, "status_code": 403},
    {"error_rate": 1.0, "status_code": 500}, {"error_rate": 1.0, "status_code": 400}, {"malformed": True},
    {"truncate": True}, {"error_rate": 1.0, "status_code": 429, "retry_after": 1},
]
OPERATOR_GETS = [
    "/health/", "/health/live", "/health/ready", "/health/services", "/health/services/sarvam", "/health/metrics",
    "/health/alerts", "/health/alerts?severity=critical", "/health/trends/sarvam", "/health/trends/openai.chat",
    "/health/status", "/health/configuration", "/metrics", "/status", "/status/fragment", "/schema/openapi.json",
    "/_sim/faults", "/_sim/requests",
]


class Evidence:
    """Everything the gateway said, to be searched for secrets."""

    def __init__(self) -> None:
        self.texts: list[tuple[str, str]] = []
        self.statuses: list[int] = []

    def response(self, what: str, response: httpx.Response) -> None:
        self.statuses.append(response.status_code)
        headers = "\n".join(f"{k}: {v}" for k, v in response.headers.items())
        self.texts.append((what, f"{response.status_code}\n{headers}\n{response.content.decode(errors='replace')}"))

    def call(self, what: str, request: Request, client: httpx.Client) -> None:
        try:
            self.response(what, request(client))
        except httpx.TransportError as error:  # a truncated stream: what arrived is in the error
            self.texts.append((what, repr(error)))

    def leaks(self) -> list[tuple[str, str]]:
        needles = [MARK, REDIS_PASSWORD, ALERTMANAGER_PASSWORD, *SECRETS.values()]
        return [(what, text[max(0, text.find(n) - 80):text.find(n) + 80])
                for what, text in self.texts for n in needles if n in text]


@pytest.fixture
def simulator() -> Iterator[LiveServer]:
    with live_server(create_simulator_app()) as server:
        yield server


def test_no_secret_appears_in_any_output(
    simulator: LiveServer, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
) -> None:
    sim = httpx.Client(base_url=simulator.url + "/_sim", timeout=10)
    evidence = Evidence()
    spans = InMemorySpanExporter()
    json_logs = io.StringIO()
    with redis_server(password=REDIS_PASSWORD) as redis, http_receiver() as (otlp, received):
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", otlp)
        env = {**SECRETS, "STATE_REDIS_URL": redis.url, "ENVIRONMENT": "production", "METRICS_REQUIRE_AUTH": "true",
               "ALERTMANAGER_URL": f"http://gateway:{ALERTMANAGER_PASSWORD}@127.0.0.1:{free_port()}",
               "ACCESS_LOG": "true", "LOG_SUMMARY_INTERVAL": "0.2s",
               "LOG_FORMAT": "json", "LOG_LEVEL": "debug", "HEALTH_CHECK_INTERVAL": "3600",
               "ALERT_EVAL_INTERVAL": "1", "ALERT_MIN_REQUESTS": "1", "ALERT_FOR": "1s",
               "SARVAM_BASE_URL": simulator.url + "/_sim/sarvam", "DEEPGRAM_BASE_URL": simulator.url + "/_sim/deepgram",
               "OPENAI_BASE_URL": simulator.url + "/_sim/openai/v1",
               **{f"{p}_{k}": v for p in ("SARVAM", "DEEPGRAM", "OPENAI", "RAG")
                  for k, v in (("TIMEOUT", "0.5"), ("MAX_FAILURES", "30"), ("CIRCUIT_RESET_TIME", "60"),
                                      ("RATE_LIMIT", "100000"))}}
        settings = load_settings(env)
        handler = setup_logging(settings, stream=json_logs)
        caplog.set_level(logging.DEBUG)
        for name in ("httpx", "httpx2", "httpcore", "openai", "aiohttp", "redis", "uvicorn", "litestar"):
            caplog.set_level(logging.DEBUG, logger=name)
        uvicorn_logs = logging.getLogger("uvicorn")  # its records do not propagate to the root logger
        try:
            app = create_app(settings)
            app.state.service_manager.telemetry.tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
            with live_server(app) as server, httpx.Client(base_url=server.url, timeout=30) as client:
                uvicorn_logs.addHandler(caplog.handler)  # after uvicorn configured its logging
                drive(client, sim, evidence, redis_stop=redis.stop)
        finally:
            logging.getLogger().removeHandler(handler)
            uvicorn_logs.removeHandler(caplog.handler)
            sim.close()

    evidence.texts.append(("json logs", json_logs.getvalue()))
    records = [record for _, record in received.log_records()]
    evidence.texts += [(f"otlp log record {record.event_name}", str(record)) for record in records]
    formatter = logging.Formatter()
    for record in caplog.records:
        evidence.texts.append((f"log {record.name}", formatter.format(record) + repr(vars(record))))
    for span in spans.get_finished_spans():
        evidence.texts.append((f"span {span.name}", span.to_json()))

    # The run covered what it claims to.
    assert {200, 401, 422, 429, 502, 503, 504} <= set(evidence.statuses), sorted(set(evidence.statuses))
    assert len(spans.get_finished_spans()) > 50
    assert "Redis unreachable" in json_logs.getvalue()
    written = {json.loads(line).get("event.name") for line in json_logs.getvalue().splitlines()}
    assert written >= EVENTS, EVENTS - written
    assert {record.event_name for record in records} >= EVENTS, EVENTS - {r.event_name for r in records}
    assert "alert delivery failed" in json_logs.getvalue() and "gateway:***@" in json_logs.getvalue()
    assert len(json_logs.getvalue().splitlines()) > 10
    assert any(r.name.startswith("uvicorn") and r.levelno >= logging.ERROR for r in caplog.records)
    assert evidence.leaks() == []


def drive(client: httpx.Client, sim: httpx.Client, evidence: Evidence, redis_stop: Callable[[], None]) -> None:
    """Every endpoint: working, refused, failing upstream in every way, breakers open, Redis down."""
    for headers in ({}, {"Authorization": "Bearer nope"}):
        evidence.response("no client key", client.post("/v1/translate", json={}, headers=headers))
    with httpx.Client(base_url=client.base_url, headers=CLIENT, timeout=30) as authed:
        for what, (_, _, request) in CALLS.items():
            evidence.call(what, request, authed)
        for bad in ({"input": "", "target_language_code": "xx"}, {"text": "x" * 20000}, {"messages": "no"}):
            for path in ("/v1/translate", "/v1/tts", "/v1/chat/completions", "/v1/rag/query"):
                evidence.response(f"invalid {path}", authed.post(path, json=bad))
        evidence.response("bad audio", authed.post("/v1/stt", files={"file": ("a.wav", b"not audio", "audio/wav")},
                                                   data={"language_code": "hi-IN"}))
        for fault in FAULTS:
            for what, (provider, operation, request) in CALLS.items():
                sim.delete("/faults").raise_for_status()
                sim.put("/faults", json={"provider": provider, "operation": operation, **fault}).raise_for_status()
                evidence.call(f"{what} {fault}", request, authed)
        sim.delete("/faults").raise_for_status()
        time.sleep(1.1)  # the providers' Retry-After
        for provider in ("sarvam", "deepgram", "openai"):
            sim.put("/faults", json={"provider": provider, "error_rate": 1.0, "status_code": 502}).raise_for_status()
        for what, (_, _, request) in CALLS.items():  # until its breaker is open
            for _ in range(31):
                response = request(authed)
                if response.status_code == 503:
                    evidence.response(f"{what} open", response)
                    break
        sim.delete("/faults").raise_for_status()
        redis_stop()
        for what, (_, _, request) in CALLS.items():
            evidence.call(f"{what} redis down", request, authed)
    configuration = client.get("/health/configuration", headers=ADMIN).json()
    assert {configuration["services"][p]["mode"] for p in ("sarvam", "deepgram", "openai")} == {"live"}
    for path in OPERATOR_GETS:
        evidence.response(path, client.get(path, headers=ADMIN))
        evidence.response(f"{path} unauthenticated", client.get(path))
