"""Static files the gateway's own pages load, served by Litestar's static-files router from an
allow-list: nothing else in their directory is reachable (the Swagger UI package ships files the
docs page does not use, such as its own ``index.html``)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from litestar import Router
from litestar.datastructures import CacheControlHeader
from litestar.file_system import BaseLocalFileSystem
from litestar.static_files import create_static_files_router
from litestar.types import PathType
from litestar.types.file_types import FileInfo


class AllowList(BaseLocalFileSystem):
    """The local file system, where only the listed files exist."""

    def __init__(self, directory: Path, names: Iterable[str]) -> None:
        self.allowed = frozenset((directory / name).resolve() for name in names)

    async def info(self, path: PathType, **kwargs: Any) -> FileInfo:
        if Path(path).resolve() not in self.allowed:
            raise FileNotFoundError(path)
        return await super().info(path, **kwargs)


def asset_router(path: str, directory: Path, names: Iterable[str], cache_control: CacheControlHeader,
                 name: str) -> Router:
    """``GET {path}/{file}``: the file of ``directory`` when ``names`` lists it, else 404."""
    return create_static_files_router(path, [directory], file_system=AllowList(directory, names),
                                      cache_control=cache_control, name=name, include_in_schema=False)
