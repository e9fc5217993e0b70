"""The API docs (Swagger UI at ``/schema``) with every script, style and icon served by the gateway.

Litestar's render plugins load their scripts from a CDN by default, so the docs page would be
blank offline. The files come from the ``swagger-ui-bundle-v2`` package (Swagger UI 5, which
reads the OpenAPI 3.1 documents Litestar writes) and are served under :data:`ASSETS_PATH`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar import Response, Router
from litestar.datastructures import CacheControlHeader
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]  # ships no py.typed

from .assets import asset_router
from .problems import problem

ASSETS_PATH = "/static/swagger-ui"
"""Where the Swagger UI files are served (outside ``/schema``, whose router answers 404 for any
other path under it)."""

_ASSETS = ("swagger-ui-bundle.js", "swagger-ui-standalone-preset.js", "swagger-ui.css", "favicon-32x32.png")


def swagger_plugin() -> SwaggerRenderPlugin:
    """Swagger UI at ``/schema`` and ``/schema/swagger``, loading only the gateway's own files."""
    return SwaggerRenderPlugin(
        js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
        css_url=f"{ASSETS_PATH}/swagger-ui.css",
        standalone_preset_js_url=f"{ASSETS_PATH}/swagger-ui-standalone-preset.js",
        favicon=f'<link rel="icon" type="image/png" href="{ASSETS_PATH}/favicon-32x32.png">',
        path="/swagger",
    )


def _not_found_as_problem(response: Response[Any]) -> Response[Any]:
    """Litestar answers any other path under ``/schema`` with an HTML page of its own: the
    gateway's 404 problem instead, as everywhere else."""
    if response.status_code == 404:
        detail = "no such page: the docs are /schema, the OpenAPI document /schema/openapi.json"
        return problem(404, "Not Found", detail, "not_found")
    return response


def openapi_config(title: str, version: str) -> OpenAPIConfig:
    """The app's OpenAPI config: the schema at ``/schema/openapi.json``, the docs page offline."""
    router = Router("/schema", route_handlers=[], include_in_schema=False, after_request=_not_found_as_problem)
    return OpenAPIConfig(title=title, version=version, render_plugins=[swagger_plugin()], openapi_router=router)


router = asset_router(ASSETS_PATH, Path(str(swagger_ui_path)), _ASSETS,
                      CacheControlHeader(max_age=86400, public=True), name="swagger-ui")
"""Serves the Swagger UI files the docs page loads (nothing else from the package) at
:data:`ASSETS_PATH`; add it to the app together with :func:`openapi_config`."""
