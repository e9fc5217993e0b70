"""Static files the gateway's own pages load, served from an allow-list (nothing else in their
directory is reachable) and read once."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from importlib.resources.abc import Traversable

from litestar import Response, get
from litestar.datastructures import CacheControlHeader
from litestar.exceptions import NotFoundException
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath


def asset_route(path: str, directory: Traversable, media_types: Mapping[str, str],
                cache_control: CacheControlHeader) -> HTTPRouteHandler:
    """``GET {path}/{name}``: the file ``name`` of ``directory`` when ``media_types`` lists it, else 404."""

    @functools.cache
    def content(name: str) -> bytes:
        return directory.joinpath(name).read_bytes()

    @get(f"{path}/{{name:str}}", include_in_schema=False, sync_to_thread=False, cache_control=cache_control)
    def asset(name: FromPath[str]) -> Response[bytes]:
        media_type = media_types.get(name)
        if media_type is None:
            raise NotFoundException(f"no such file under {path}: {name!r}")
        return Response(content(name), media_type=media_type)

    return asset
