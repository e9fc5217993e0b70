"""``ACCESS_LOG=true``: one line per HTTP request in the common log format, with its trace id.

An ASGI middleware inside the server span, so that the trace-context filter puts the request's
trace_id and span_id on the line. The path is logged without its query string (which may carry
what nobody should find in a log). Two fields follow the common log format's: the client the
request's calls are attributed to, and what its provider calls cost in USD (``-`` when it made
none, or one whose price is unknown). Off by default: a successful call then logs nothing.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Final

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from ..calls import CURRENT_SPEND, RequestSpend
from ..config import ANONYMOUS

LOGGER: Final = logging.getLogger("app.access")


class AccessLog:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status, size = 500, 0
        spend = RequestSpend()
        CURRENT_SPEND.set(spend)

        async def sending(message: Message) -> None:
            nonlocal status, size
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                size += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            client = scope.get("client")
            host = client[0] if client else "-"
            when = datetime.now(UTC).strftime("%d/%b/%Y:%H:%M:%S +0000")
            method, path = scope["method"], scope["path"]
            who = spend.client or ANONYMOUS
            cost = spend.cost_usd if spend.priced and not spend.unpriced else None
            LOGGER.info('%s - - [%s] "%s %s HTTP/%s" %d %d %s %s', host, when, method, path, scope["http_version"],
                        status, size, who, "-" if cost is None else f"{cost:.10g}",
                        extra={"method": method, "path": path, "status": status, "bytes": size, "client": who,
                               "cost_usd": cost, "duration_ms": round((time.perf_counter() - started) * 1000, 3)})
