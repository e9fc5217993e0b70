"""A plain WebSocket client (the ``websockets`` library the SDKs use) for what the SDKs hide: the
handshake's refusal (status, headers, body) and the close code and reason."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from .clients import CLIENT_KEY

LISTEN = "/deepgram/v1/listen?model=nova-3&encoding=linear16&sample_rate=16000"
DEEPGRAM_AUTH = {"Authorization": f"Token {CLIENT_KEY}"}


@dataclass(frozen=True)
class Refusal:
    status: int
    headers: dict[str, str]
    body: Any


def url(gateway: str, path: str) -> str:
    return gateway.replace("http", "ws", 1) + path


async def refusal(gateway: str, path: str = LISTEN, headers: dict[str, str] | None = None) -> Refusal:
    """The handshake's HTTP refusal; fails the test if the session was accepted."""
    try:
        async with connect(url(gateway, path), additional_headers=headers or DEEPGRAM_AUTH, open_timeout=10):
            pass
    except InvalidStatus as exc:
        response = exc.response
        return Refusal(response.status_code, {k.lower(): v for k, v in response.headers.raw_items()},
                       json.loads(response.body or b"null"))
    raise AssertionError(f"the gateway accepted {path}")


def open_session(gateway: str, path: str = LISTEN, headers: dict[str, str] | None = None) -> connect:
    return connect(url(gateway, path), additional_headers=headers or DEEPGRAM_AUTH, open_timeout=10)


async def closed(socket: ClientConnection) -> tuple[int, str]:
    """Read until the gateway closes the session; its close code and reason."""
    try:
        while True:
            await socket.recv()
    except ConnectionClosed as exc:
        received = exc.rcvd
        return (received.code, received.reason) if received is not None else (1006, "")
