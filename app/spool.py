"""A spooled upload: bytes kept in memory up to a small threshold, then in a named file on disk.

Large audio never becomes one ``bytes`` object: it is written as it arrives and read back in
chunks, as many times as needed (a fallback re-reads the same file). The file has a name in a
known directory, so leftovers are visible and a whole directory can be swept at shutdown.
Imports nothing of ours: the receiving side (``api``) and the readers (``providers``,
``resilience``) share it.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO

MEMORY_THRESHOLD = 1024 * 1024
"""Bytes an upload may have before it goes to disk (Starlette's and Litestar's default too)."""
CHUNK_SIZE = 256 * 1024
"""Bytes written or read per step: few thread hops, little memory per upload in flight."""


class SpooledFile:
    """Bytes written once, in order, then read any number of times; :meth:`close` removes them."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.size = 0
        self.path: Path | None = None
        """The file on disk, once the upload outgrew :data:`MEMORY_THRESHOLD`."""
        self._pending = bytearray()
        self._file: BinaryIO | None = None

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        """Append ``data``; past the threshold it goes to disk in :data:`CHUNK_SIZE` steps,
        written by a worker thread so that a slow disk never stalls the event loop."""
        self.size += len(data)
        self._pending += data
        if len(self._pending) > (MEMORY_THRESHOLD if self.path is None else CHUNK_SIZE):
            await self._flush()

    async def finish(self) -> None:
        """Write what is still pending; the file is complete and readable afterwards."""
        if self._file is not None:
            await self._flush()
            self._file.close()
            self._file = None

    async def _flush(self) -> None:
        data, self._pending = self._pending, bytearray()  # handed over, not copied
        if self._file is None:
            fd, name = tempfile.mkstemp(prefix="upload-", dir=self.directory)
            self.path = Path(name)
            self._file = os.fdopen(fd, "wb")
        await asyncio.to_thread(self._file.write, data)

    def open(self) -> BinaryIO:
        """A new reader from the start (for parsers such as mutagen that want a file)."""
        if self.path is None:
            return io.BytesIO(self._pending)
        return self.path.open("rb")

    async def chunks(self) -> AsyncIterator[bytes]:
        """The bytes from the start, a chunk at a time; each call reads again from the start."""
        if self.path is None:
            for start in range(0, len(self._pending), CHUNK_SIZE):
                yield bytes(self._pending[start:start + CHUNK_SIZE])
            return
        reader = await asyncio.to_thread(self.path.open, "rb")
        try:
            while chunk := await asyncio.to_thread(reader.read, CHUNK_SIZE):
                yield chunk
        finally:
            reader.close()

    def close(self) -> None:
        """Remove the bytes, on disk or in memory (safe to call more than once, and after a
        failed write: what a full disk refuses to flush is dropped with the file)."""
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None
        if self.path is not None:
            self.path.unlink(missing_ok=True)
        self._pending = bytearray()
