"""A ``multipart/form-data`` request body streamed from a spooled upload, its length known up front.

httpx2 would encode a form itself, but reading the file part from the event loop; this body reads
it in chunks through :meth:`SpooledFile.chunks` instead, and announces its ``Content-Length`` so
the provider sees an ordinary (not chunked) upload.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Mapping

from ..spool import SpooledFile


def _quoted(value: str) -> str:
    """A header parameter value as browsers write it (HTML's multipart encoding)."""
    return value.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


def multipart_body(
    fields: Mapping[str, str], file_field: str, filename: str, content_type: str, source: SpooledFile,
) -> tuple[dict[str, str], AsyncIterator[bytes]]:
    """The headers and a fresh body stream of a form with text ``fields`` and one file part."""
    boundary = secrets.token_hex(16)
    head = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{_quoted(name)}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ) + (f'--{boundary}\r\nContent-Disposition: form-data; name="{_quoted(file_field)}"; '
         f'filename="{_quoted(filename)}"\r\nContent-Type: {content_type}\r\n\r\n').encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}",
               "Content-Length": str(len(head) + source.size + len(tail))}

    async def body() -> AsyncIterator[bytes]:
        yield head
        async for chunk in source.chunks():
            yield chunk
        yield tail

    return headers, body()
