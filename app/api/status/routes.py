"""The routes: the page, the fragment its script refreshes, and its own CSS and script."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from litestar import Request, Response, Router, get
from litestar.datastructures import CacheControlHeader
from litestar.enums import MediaType
from litestar.exceptions import ValidationException
from litestar.params import FromQuery

from ...config import format_duration
from ...monitoring.trends import TrendError
from ..assets import asset_router
from .auth import admin_guard
from .render import render_fragment, render_page
from .view import StatusPage, build

STATIC_PATH = "/status/static"
_HEADERS = {
    "Cache-Control": "no-store",
    # Everything the page needs comes from the gateway itself; nothing else may load.
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; script-src 'self'; connect-src 'self'; "
                               "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
}


async def _page(request: Request[Any, Any, Any], window: str | None) -> tuple[StatusPage, str]:
    manager = request.app.state.service_manager
    chosen = window or format_duration(min(3600.0, manager.settings.monitoring_horizon))
    try:
        return await build(manager, chosen), chosen
    except TrendError as error:
        raise ValidationException(f"window: {error}") from None


@get("/", guards=[admin_guard], include_in_schema=False)
async def status_page(request: Request[Any, Any, Any], window: FromQuery[str | None] = None) -> Response[str]:
    """The status page; ``window`` (e.g. ``15m``, default ``1h``) is what the charts cover."""
    page, chosen = await _page(request, window)
    html = render_page(page, static_url=STATIC_PATH,
                       fragment_url="/status/fragment?" + urlencode({"window": chosen}))
    return Response(html, media_type=MediaType.HTML, headers=_HEADERS)


@get("/fragment", guards=[admin_guard], include_in_schema=False)
async def status_fragment(request: Request[Any, Any, Any], window: FromQuery[str | None] = None) -> Response[str]:
    """The page's live part alone, which its script swaps in on every refresh."""
    page, _ = await _page(request, window)
    return Response(render_fragment(page), media_type=MediaType.HTML, headers=_HEADERS)


status_static = asset_router("/static", Path(str(resources.files("app.api").joinpath("static"))),
                             ("status.css", "status.js"), CacheControlHeader(max_age=300),
                             name="status-static")
"""The page's stylesheet and script (no build step: plain files in ``app/api/static``)."""


router = Router("/status", route_handlers=[status_page, status_fragment, status_static])
