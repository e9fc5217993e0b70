"""A live session's upgrade to the provider carries the provider key in the provider's own header,
and the trace context; never the caller's key nor any other header of the caller's."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from app.config import load_settings
from app.main import create_app
from app.simulator import create_simulator_app
from tests.support import LiveServer, live_server

from . import clients, raw

PROVIDER_KEYS = {"DEEPGRAM_API_KEY": "dg-provider-key-123", "SARVAM_API_KEY": "sv-provider-key-456"}


class Handshakes:
    """The headers of every WebSocket handshake an ASGI app receives."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.seen: list[tuple[str, dict[str, str]]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            self.seen.append((scope["path"], {k.decode(): v.decode() for k, v in scope["headers"]}))
        await self.app(scope, receive, send)


@pytest.fixture
def upstream() -> Iterator[tuple[Handshakes, LiveServer]]:
    handshakes = Handshakes(create_simulator_app())
    with live_server(handshakes) as server:
        yield handshakes, server


async def test_the_provider_key_goes_upstream_and_nothing_of_the_callers(
        upstream: tuple[Handshakes, LiveServer]) -> None:
    handshakes, sim = upstream
    env = {**PROVIDER_KEYS, "GATEWAY_API_KEYS": clients.CLIENT_KEY, "HEALTH_CHECK_INTERVAL": "3600",
           "DEEPGRAM_BASE_URL": sim.url + "/_sim/deepgram", "SARVAM_BASE_URL": sim.url + "/_sim/sarvam"}
    with live_server(create_app(load_settings(env))) as gateway:
        await clients.deepgram_transcripts(gateway.url, 1.0)
        path = "/sarvam/speech-to-text/ws?language-code=hi-IN"
        async with raw.open_session(gateway.url, path, {"api-subscription-key": clients.CLIENT_KEY,
                                                        "X-Caller-Secret": "caller-only"}) as socket:
            await socket.close()
    (dg_path, deepgram), (sv_path, sarvam) = handshakes.seen
    assert dg_path == "/_sim/deepgram/v1/listen" and sv_path == "/_sim/sarvam/speech-to-text/ws"
    assert deepgram["authorization"] == f"Token {PROVIDER_KEYS['DEEPGRAM_API_KEY']}"
    assert sarvam["api-subscription-key"] == PROVIDER_KEYS["SARVAM_API_KEY"]
    for headers in (deepgram, sarvam):
        assert "traceparent" in headers
        assert clients.CLIENT_KEY not in " ".join(headers.values())
        assert "x-caller-secret" not in headers and "caller-only" not in " ".join(headers.values())
