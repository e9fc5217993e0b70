"""Receiving audio uploads in bounded memory: the body parsed as it arrives, the file spooled.

Litestar's own form extraction (``UploadFile``) feeds the same parser, ``multipart``'s
``PushMultipartParser``, from the same ``Request.stream()``, into a ``SpooledTemporaryFile``. It is
not used here because its rolled-over file is anonymous (no name to find or sweep at shutdown), it
waits for ever on a client that stops sending, and on a disconnect or a cut mid-body it leaves its
files to the garbage collector. ``Request.stream()`` is kept: it answers 413 to a
``Content-Length`` over the route's limit before reading anything, and counts a body without one
as it arrives, cutting it at the limit with 413.

Every route that takes audio (``/v1/stt`` and the drop-in provider routes) receives it here and
gets a :class:`~app.spool.SpooledFile` that is removed when the block ends, whatever the outcome:
:func:`received_form` for a multipart form, :func:`received_body` for a raw body (as Deepgram
takes it).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from litestar import Request
from litestar.exceptions import ClientException, HTTPException, InternalServerException
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from multipart import (  # type: ignore[import-untyped]  # ships no type hints
    MultipartSegment,
    ParserError,
    ParserLimitReached,
    PushMultipartParser,
)

from ..calls import invalid
from ..spool import SpooledFile

log = logging.getLogger("app.api")
MAX_FIELD_SIZE = 64 * 1024
"""Bytes a text field of an upload form may have (they are kept in memory)."""
MAX_PARTS = 16
SPOOL_PREFIX = "gateway-uploads-"
_SPOOL_NAME = re.compile(re.escape(SPOOL_PREFIX) + r"(?P<host>.+)-(?P<pid>\d+)-[a-z0-9_]+")
"""``gateway-uploads-<host>-<pid>-<random>`` (mkdtemp's random part has no ``-``)."""


class UploadSpool:
    """This process's spool directory under ``UPLOAD_SPOOL_DIR``: made on first use, removed
    with anything left in it at shutdown (a directory per process, so workers never sweep each
    other's uploads). Its name says which host and process made it, so that a process that
    starts can remove what processes of its host that no longer run left behind
    (:meth:`sweep`)."""

    def __init__(self, root: str, idle_timeout: float, deadline: float) -> None:
        self.root = Path(root)
        self.idle_timeout = idle_timeout
        self.deadline = deadline
        self._directory: Path | None = None

    @property
    def directory(self) -> Path:
        if self._directory is None or not self._directory.is_dir():
            self.root.mkdir(parents=True, exist_ok=True)
            prefix = f"{SPOOL_PREFIX}{_host()}-{os.getpid()}-"
            self._directory = Path(tempfile.mkdtemp(prefix=prefix, dir=self.root))
        return self._directory

    def file(self) -> SpooledFile:
        return SpooledFile(self.directory)

    def sweep(self) -> None:
        """Remove the spool directories of this host's processes that no longer run (a crash or a
        kill leaves them behind)."""
        host = _host()
        try:
            candidates = list(self.root.iterdir())
        except FileNotFoundError:
            return
        for path in candidates:
            name = _SPOOL_NAME.fullmatch(path.name)
            if name and name["host"] == host and not _running(int(name["pid"])) and path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
                log.info("removed the upload spool %s: process %s, which made it, no longer runs", path, name["pid"])

    def stop(self) -> None:
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
            self._directory = None


def _host() -> str:
    return socket.gethostname().replace("/", "_") or "localhost"


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # no signal: only whether it exists
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's
        pass
    return True


@dataclass
class UploadForm:
    """A multipart form with its one file part spooled."""

    fields: dict[str, str] = field(default_factory=dict)
    file: SpooledFile | None = None
    filename: str = "audio"
    content_type: str | None = None

    def text(self, name: str) -> str | None:
        return self.fields.get(name)

    def required(self, name: str) -> str:
        value = self.fields.get(name)
        if value is None:
            raise invalid(f"the form has no {name!r} field", 422)
        return value

    def audio(self) -> SpooledFile:
        if self.file is None:
            raise invalid("the form has no 'file' part with the audio", 422)
        return self.file


async def body_chunks(request: Request[Any, Any, Any], spool: UploadSpool) -> AsyncIterator[bytes]:
    """The request body as it arrives, ending with ``b""``; 408 when the client sends nothing
    for the spool's idle timeout or has not sent it all by its deadline, 413 past the route's
    limit (or at once, from Content-Length)."""
    stream = request.stream()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + spool.deadline
    try:
        while True:
            try:
                async with asyncio.timeout_at(min(loop.time() + spool.idle_timeout, deadline)):
                    chunk = await anext(stream)
            except StopAsyncIteration:
                return
            yield chunk
    except TimeoutError:
        detail = (f"the upload took longer than its deadline of {spool.deadline:g} s" if loop.time() >= deadline
                  else f"the upload stalled: nothing arrived for {spool.idle_timeout:g} s")
        raise HTTPException(status_code=408, detail=detail) from None
    except RequestEntityTooLarge:
        limit = request.route_handler.resolve_request_max_body_size() or 0
        raise invalid(f"the upload is larger than this route accepts ({limit / 1048576:.1f} MB)", 413) from None
    except InternalServerException:  # Litestar's answer to a client that went away mid-body
        raise ClientException("the client disconnected before the upload ended") from None
    finally:
        await stream.aclose()


@asynccontextmanager
async def _spooling(spool: UploadSpool) -> AsyncIterator[None]:
    """507 for a full disk, or any other failure to write the spool (the caller removes it)."""
    try:
        yield
    except OSError as error:
        log.error("an upload could not be spooled to %s: %s", spool.root, error)
        raise HTTPException(status_code=507, detail=f"the gateway could not store the upload: {error.strerror or error}"
                            ) from None


async def _receive_form(request: Request[Any, Any, Any], spool: UploadSpool, form: UploadForm) -> None:
    media_type, params = request.content_type
    boundary = params.get("boundary", "")
    if media_type != "multipart/form-data" or not boundary:
        raise HTTPException(status_code=415, detail=f"send the upload as multipart/form-data, not {media_type!r}")
    segment: MultipartSegment | None = None
    sink: SpooledFile | bytearray | None = None
    """Where the current part's bytes go: the spool, a text field, or nowhere (other files)."""
    try:
        with PushMultipartParser(boundary, max_segment_count=MAX_PARTS) as parser:
            async for chunk in body_chunks(request, spool):
                for event in parser.parse(chunk):
                    if isinstance(event, MultipartSegment):
                        segment, sink = event, None
                        if event.filename is None:
                            sink = bytearray()
                        elif event.name == "file" and form.file is None:
                            sink = form.file = spool.file()
                            form.filename = event.filename or "audio"
                            form.content_type = event.content_type
                    elif event is None:
                        if isinstance(sink, bytearray) and segment is not None:
                            form.fields[segment.name] = sink.decode(segment.charset or "utf-8", errors="replace")
                        segment, sink = None, None
                    elif isinstance(sink, SpooledFile):
                        await sink.write(event)
                    elif sink is not None:
                        sink += event
                        if len(sink) > MAX_FIELD_SIZE:
                            raise invalid(f"a form field is over {MAX_FIELD_SIZE // 1024} KiB", 413)
    except ParserLimitReached:
        raise invalid(f"the form has more than {MAX_PARTS} parts", 413) from None
    except ParserError as error:
        raise invalid(f"the body is not valid multipart/form-data: {error}", 400) from None
    if form.file is not None:
        await form.file.finish()


@asynccontextmanager
async def received_form(request: Request[Any, Any, Any], spool: UploadSpool) -> AsyncIterator[UploadForm]:
    """The request's multipart form, its ``file`` part spooled as it arrives; the spooled file
    is removed when the block exits, however it exits (success, any error, cancellation)."""
    form = UploadForm()
    try:
        async with _spooling(spool):
            await _receive_form(request, spool, form)
        yield form
    finally:
        if form.file is not None:
            form.file.close()


@asynccontextmanager
async def received_body(request: Request[Any, Any, Any], spool: UploadSpool) -> AsyncIterator[SpooledFile]:
    """The request's raw body spooled as it arrives, removed when the block exits however it exits."""
    source: SpooledFile | None = None
    try:
        async with _spooling(spool):
            source = spool.file()
            async for chunk in body_chunks(request, spool):
                await source.write(chunk)
            await source.finish()
        yield source
    finally:
        if source is not None:
            source.close()
