"""Who may see the status page: the admin key in front of it, from a script or a browser."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import httpx
import pytest

from app.config import load_settings
from app.main import create_app
from tests.gateway import TEST_ENV
from tests.support import free_port, live_server

ADMIN_KEY = "admin-secret-for-tests"


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def gateway_client(env: dict[str, str]) -> Iterator[httpx.Client]:
    port = free_port()
    settings = load_settings({**TEST_ENV, **env}).with_simulator(f"http://127.0.0.1:{port}/_sim")
    with live_server(create_app(settings), port) as server, httpx.Client(base_url=server.url) as client:
        yield client


@pytest.fixture(scope="module")
def production() -> Iterator[httpx.Client]:
    yield from gateway_client({"ENVIRONMENT": "production", "ADMIN_API_KEY": ADMIN_KEY})


@pytest.mark.parametrize("path", ["/status", "/status/fragment"])
def test_production_page_needs_the_admin_key_and_asks_a_browser_for_it(production: httpx.Client, path: str) -> None:
    refused = production.get(path)
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"].startswith("Basic ")  # a browser prompts for it
    assert ADMIN_KEY not in refused.text
    for wrong in ("Bearer nope", basic("admin", "nope"), basic("admin", ""), "Basic !!!"):
        assert production.get(path, headers={"Authorization": wrong}).status_code == 401, wrong
    for right in (f"Bearer {ADMIN_KEY}", basic("admin", ADMIN_KEY), basic("", ADMIN_KEY)):
        answer = production.get(path, headers={"Authorization": right})
        assert answer.status_code == 200, right
        assert 'id="status-content"' in answer.text


def test_production_page_assets_need_no_key(production: httpx.Client) -> None:
    assert production.get("/status/static/status.js").status_code == 200
    assert production.get("/status/static/status.css").status_code == 200
    assert production.get("/status/static/page.html").status_code == 404


def test_production_without_an_admin_key_does_not_serve_the_page() -> None:
    for client in gateway_client({"ENVIRONMENT": "production"}):
        assert client.get("/status").status_code == 404
        assert client.get("/status/fragment").status_code == 404
