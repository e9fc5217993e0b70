"""Client keys on /v1, the admin key on the operator routes, body size limits, and no fetching
of URLs that callers send."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import httpx
import pytest
from litestar.handlers import HTTPRouteHandler

from app.config import load_settings
from app.main import create_app
from tests.audio import wav
from tests.gateway import TEST_ENV, running_gateway
from tests.support import free_port, live_server

TRANSLATE = {"input": "hello", "source_language_code": "en-IN", "target_language_code": "hi-IN"}
ADMIN = "admin-key-for-tests"


@contextlib.contextmanager
def production(env: Mapping[str, str]) -> Iterator[httpx.Client]:
    """A production gateway (its simulator's control routes are guarded, so no test helpers)."""
    port = free_port()
    settings = load_settings({**TEST_ENV, "ENVIRONMENT": "production", **env})
    app = create_app(settings.with_simulator(f"http://127.0.0.1:{port}/_sim"))
    with live_server(app, port) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def translate(client: httpx.Client) -> httpx.Response:
    return client.post("/v1/translate", json=TRANSLATE)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def assert_problem(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["status"] == status


def test_client_keys_guard_every_v1_route() -> None:
    with running_gateway({"GATEWAY_API_KEYS": "client-one, client-two"}) as gw:
        for route in ("/v1/translate", "/v1/tts", "/v1/stt", "/v1/chat/completions", "/v1/embeddings",
                      "/v1/rag/documents", "/v1/rag/query"):
            missing = gw.client.post(route, json={})
            assert_problem(missing, 401)
            assert missing.headers["www-authenticate"].startswith("Bearer")
            assert_problem(gw.client.post(route, json={}, headers=bearer("client-three")), 401)
            assert_problem(gw.client.post(route, json={}, headers={"Authorization": "client-one"}), 401)
        assert gw.upstream_requests() == []  # refused before anything reached a provider
        for key in ("client-one", "client-two"):
            assert gw.client.post("/v1/translate", json=TRANSLATE, headers=bearer(key)).status_code == 200
        assert gw.client.get("/health/live").status_code == 200  # probes need no key


def test_production_operator_routes_need_the_admin_key() -> None:
    with production({"ADMIN_API_KEY": ADMIN, "METRICS_REQUIRE_AUTH": "true"}) as client:
        for method, path in (("GET", "/health/configuration"), ("GET", "/_sim/faults"), ("DELETE", "/_sim/faults"),
                             ("GET", "/_sim/requests"), ("GET", "/metrics"), ("GET", "/status")):
            assert client.request(method, path).status_code == 401, path
            assert client.request(method, path, headers=bearer("not-the-key")).status_code == 401, path
            assert client.request(method, path, headers=bearer(ADMIN)).status_code == 200, path
        fault = {"provider": "sarvam", "error_rate": 1.0}
        assert client.put("/_sim/faults", json=fault).status_code == 401
        assert client.get("/_sim/faults", headers=bearer(ADMIN)).json() == []
        # The gateway still reaches its own simulated providers without the admin key.
        assert translate(client).status_code == 200
        assert client.get("/health/").status_code == 200


def test_production_without_an_admin_key_turns_the_operator_routes_off() -> None:
    with production({}) as client:
        for method, path in (("GET", "/health/configuration"), ("PUT", "/_sim/faults"), ("GET", "/_sim/requests"),
                             ("GET", "/status")):
            assert client.request(method, path, json={"provider": "sarvam"}).status_code == 404, path
        assert translate(client).status_code == 200


def test_development_without_an_admin_key_leaves_them_open() -> None:
    with running_gateway() as gw:
        for path in ("/health/configuration", "/_sim/faults", "/status", "/metrics"):
            assert gw.client.get(path).status_code == 200, path


def test_every_route_has_a_body_limit_and_stt_takes_the_configured_audio_size() -> None:
    with running_gateway({"SARVAM_MAX_AUDIO_SIZE_MB": "2", "DEEPGRAM_MAX_AUDIO_SIZE_MB": "3"}) as gw:
        resolved = {path: handler.resolve_request_max_body_size()
                    for path, methods in gw.app.route_handler_method_map.items()
                    for handler in methods.values() if isinstance(handler, HTTPRouteHandler)}
        limits = {path: limit for path, limit in resolved.items() if limit is not None}
        assert limits == resolved  # no route without a limit
        assert limits["/v1/translate"] <= 4 * 1024 * 1024
        assert 3 * 1024 * 1024 < limits["/v1/stt"] <= 5 * 1024 * 1024
        huge = b'{"input": "' + b"a" * (5 * 1024 * 1024) + b'"}'
        for path in ("/v1/translate", "/v1/chat/completions", "/v1/rag/documents"):
            response = gw.client.post(path, content=huge, headers={"content-type": "application/json"})
            assert_problem(response, 413)
        audio = wav(0.5) + b"\0" * (6 * 1024 * 1024)
        response = gw.client.post("/v1/stt", files={"file": ("big.wav", audio, "audio/wav")},
                                  data={"language_code": "hi-IN"})
        assert_problem(response, 413)
        assert gw.upstream_requests() == []
        # Audio up to the configured size is accepted (1.5 MB of WAV for a 2 MB limit).
        ok = gw.client.post("/v1/stt", files={"file": ("ok.wav", wav(45.0), "audio/wav")},
                            data={"language_code": "hi-IN", "provider": "sarvam"})
        assert ok.status_code == 200, ok.text


class _Canary(BaseHTTPRequestHandler):
    hits: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.hits.append(self.path)
        self.send_response(200)
        self.end_headers()

    do_POST = do_GET

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def canary() -> Iterator[tuple[str, list[str]]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Canary)
    _Canary.hits = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", _Canary.hits
    finally:
        server.shutdown()
        server.server_close()


def test_urls_sent_by_callers_are_never_fetched(canary: tuple[str, list[str]]) -> None:
    url, hits = canary
    with running_gateway() as gw:
        requests = [
            ("/v1/translate", {"input": url, "source_language_code": "en-IN", "target_language_code": "hi-IN"}),
            ("/v1/tts", {"text": url, "language_code": "en-IN", "speaker": url}),
            ("/v1/chat/completions", {"model": url, "messages": [{"role": "user", "content": [
                {"type": "text", "text": url}, {"type": "image_url", "image_url": {"url": url + "/img.png"}},
                {"type": "input_audio", "input_audio": {"data": url, "format": "wav"}}]}]}),
            ("/v1/chat/completions", {"messages": [{"role": "user", "content": url}], "tools": [
                {"type": "function", "function": {"name": "fetch", "parameters": {"$ref": url + "/schema"}}}]}),
            ("/v1/embeddings", {"model": "text-embedding-3-small", "input": [url, url + "/doc"]}),
            ("/v1/rag/documents", {"documents": [{"id": "d1", "text": url, "metadata": {"url": url + "/page"}}]}),
            ("/v1/rag/query", {"query": url + "/question"}),
        ]
        for path, body in requests:
            response = gw.client.post(path, json=body)
            assert response.status_code < 500, (path, response.text)
        response = gw.client.post("/v1/stt", data={"language_code": "en-IN", "file": url + "/audio.wav"})
        assert response.status_code < 500
        response = gw.client.post("/v1/stt", files={"file": ("a.wav", wav(0.5), "audio/wav")},
                                  data={"language_code": "en-IN", "url": url + "/audio.wav"})
        assert response.status_code == 200
    assert hits == []


def test_near_miss_admin_keys_are_refused() -> None:
    # Keys that share a prefix with the real one are refused just the same.
    with production({"ADMIN_API_KEY": ADMIN}) as client:
        for guess in (ADMIN[:-1], ADMIN + "x", ADMIN.upper(), "-", ADMIN + " x"):
            for path in ("/health/configuration", "/_sim/faults", "/status"):
                assert client.get(path, headers=bearer(guess)).status_code == 401, (guess, path)
        assert client.get("/health/configuration", headers=bearer(ADMIN)).status_code == 200
