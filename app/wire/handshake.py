"""A WebSocket handshake refused with an HTTP answer (the ASGI "websocket.http.response" extension,
which uvicorn serves); where the server cannot send one, the socket is accepted and closed at once
with a close code and a reason (closed before it is accepted, it would be a bare 403)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from litestar import WebSocket
from litestar.status_codes import WS_1008_POLICY_VIOLATION

DENIAL_EXTENSION = "websocket.http.response"


def can_deny(socket: WebSocket[Any, Any, Any]) -> bool:
    """Whether the server lets this handshake be answered with an HTTP status and body."""
    return DENIAL_EXTENSION in (socket.scope.get("extensions") or {})


async def deny(socket: WebSocket[Any, Any, Any], status: int, body: Any, *, media_type: str = "application/json",
               headers: Mapping[str, str] | None = None, close_code: int = WS_1008_POLICY_VIOLATION,
               reason: str = "") -> None:
    """Refuse the handshake: ``status`` with ``body`` (JSON unless bytes) where the server can send
    it, otherwise accept and close at once with ``close_code`` and ``reason``."""
    if not can_deny(socket):
        await socket.accept()
        await socket.close(close_code, reason)
        return
    raw = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    fields = [(b"content-type", media_type.encode()), (b"content-length", str(len(raw)).encode())]
    fields += [(name.lower().encode(), value.encode()) for name, value in (headers or {}).items()]
    await socket.send({"type": "websocket.http.response.start", "status": status, "headers": fields})
    await socket.send({"type": "websocket.http.response.body", "body": raw, "more_body": False})
