"""The API docs page loads nothing from outside the gateway and renders offline."""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit

import html5lib
import httpx
import pytest
from litestar import Litestar, get

from app.api import docs
from tests.support import live_server

from .browser import dump_dom


@get("/v1/ping", sync_to_thread=False)
def ping() -> dict[str, str]:
    """A documented route for the docs page to show."""
    return {"pong": "yes"}


def app() -> Litestar:
    return Litestar(route_handlers=[ping, docs.router], openapi_config=docs.openapi_config("Gateway", "1.0"))


def referenced_urls(page: str) -> list[str]:
    tree = html5lib.parse(page, namespaceHTMLElements=False)
    return [str(el.get(attr)) for el in tree.iter() for attr in ("src", "href") if el.get(attr)]


def test_docs_page_references_only_files_the_gateway_serves() -> None:
    with live_server(app()) as server, httpx.Client(base_url=server.url) as client:
        for path in ("/schema", "/schema/swagger"):
            page = client.get(path)
            assert page.status_code == 200
            urls = referenced_urls(page.text)
            assert len(urls) == 4, urls  # stylesheet, bundle, preset, favicon
            for url in urls:
                assert not urlsplit(url).netloc, f"{path} loads {url} from elsewhere"
                asset = client.get(urljoin(server.url + path, url))
                assert asset.status_code == 200, url
                assert len(asset.content) > 500, url
        assert client.get(f"{docs.ASSETS_PATH}/index.html").status_code == 404
        assert client.get(f"{docs.ASSETS_PATH}/swagger-ui.css").headers["content-type"].startswith("text/css")


@pytest.mark.browser
def test_swagger_ui_renders_the_api_in_a_browser_without_network() -> None:
    with live_server(app()) as server:
        dom = dump_dom(f"{server.url}/schema/swagger")
    tree = html5lib.parse(dom, namespaceHTMLElements=False)
    rendered = " ".join("".join(el.itertext()) for el in tree.iter()
                        if "opblock-summary-path" in (el.get("class") or ""))
    assert "/v1/ping" in rendered, "Swagger UI did not render the operations (did its scripts load?)"
