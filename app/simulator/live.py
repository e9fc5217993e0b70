"""What every simulated live (WebSocket) session shares: the handshake passes the same checks as a
request (recorded, credentials, the fault in force), and transcripts come from the audio received.

Faults, from the same ``/_sim/faults`` table as requests: ``error_rate`` with ``status_code``
refuses the upgrade with that status and the provider's error body; ``hang`` never answers the
upgrade; ``latency_ms`` delays the first result; ``truncate`` drops the socket (no close frame)
after the first result (its handler returns without a close, and the server drops the connection).
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from litestar import Response, WebSocket
from litestar.exceptions import WebSocketDisconnect

from app.simulator import content
from app.simulator.gate import HANG_CAP_SEC, POLL_SEC, ProviderWire
from app.simulator.state import SimulatorState
from app.wire.handshake import deny

AnySocket = WebSocket[Any, Any, Any]
WORDS_PER_SECOND = 2.5
"""How fast the simulated speaker talks: a transcript has this many words per second of audio."""


@dataclass
class LiveFaults:
    """What the fault in force asks of an accepted session."""

    first_result_delay: float = 0.0
    drop_after_first: bool = False


async def refuse(socket: AnySocket, response: Response[Any]) -> None:
    await deny(socket, response.status_code or 500, response.content, headers=dict(response.headers))


async def admit_socket(
    socket: AnySocket, state: SimulatorState, wire: ProviderWire, operation: str,
) -> LiveFaults | None:
    """The handshake's checks; ``None`` when the upgrade was refused (the socket is done with)."""
    state.requests.record(provider=wire.name, operation=operation, method="GET", path=socket.url.path,
                          traceparent=socket.headers.get("traceparent"))
    if not wire.authorized(socket):
        await refuse(socket, wire.error(wire.auth_status))
        return None
    fault = state.faults.lookup(wire.name, operation)
    if fault is None:
        return LiveFaults()
    if fault.spec.hang:
        deadline = asyncio.get_running_loop().time() + HANG_CAP_SEC
        while _hanging(state, wire.name, operation) and asyncio.get_running_loop().time() < deadline:
            await asyncio.wait({state.faults.changed()}, timeout=POLL_SEC)
        if _hanging(state, wire.name, operation):
            await refuse(socket, wire.error(503))
            return None
    if fault.next_request_fails(operation):
        status = fault.spec.status_code
        headers = {"Retry-After": str(fault.spec.retry_after)} if status == 429 else None
        await refuse(socket, wire.error(status, headers=headers))
        return None
    return LiveFaults(fault.spec.latency_ms / 1000, fault.spec.truncate)


class LiveSession:
    """One accepted simulated session: :meth:`start` once, then :meth:`frame` for each client frame."""

    async def start(self) -> None:
        """What the provider sends as soon as the socket is open (nothing, unless overridden)."""

    async def frame(self, frame: bytes | str) -> bool:
        """Handle one client frame; ``False`` ends the session (it closed the socket, or a fault drops it)."""
        raise NotImplementedError


async def serve_socket(socket: AnySocket, state: SimulatorState, wire: ProviderWire, operation: str,
                       session: Callable[[AnySocket, LiveFaults], LiveSession]) -> None:
    """A live route: the handshake's checks, then ``session``'s frames until it ends or the client goes."""
    faults = await admit_socket(socket, state, wire, operation)
    if faults is None:
        return
    await socket.accept()
    live = session(socket, faults)
    try:
        await live.start()
        while (frame := await next_frame(socket)) is not None:
            if not await live.frame(frame):
                return
    except WebSocketDisconnect:
        return


def _hanging(state: SimulatorState, provider: str, operation: str) -> bool:
    fault = state.faults.lookup(provider, operation)
    return fault is not None and fault.spec.hang


class Transcriber:
    """Turns audio seconds into transcript words: the language's sentence, word after word, at
    :data:`WORDS_PER_SECOND`, so that the transcript grows with the audio sent."""

    def __init__(self, language: str) -> None:
        self._words = content.transcript(language).split()
        self._spoken = 0
        self.seconds = 0.0
        """Audio seconds transcribed so far."""

    def transcribe(self, seconds: float) -> str:
        self.seconds += seconds
        due = max(self._spoken + 1, round(self.seconds * WORDS_PER_SECOND))
        words = [self._words[i % len(self._words)] for i in range(self._spoken, due)]
        self._spoken = due
        return " ".join(words)


def pcm_seconds(size: int, sample_rate: int, channels: int = 1) -> float:
    """Seconds of 16-bit PCM in ``size`` bytes."""
    return size / (2 * sample_rate * max(1, channels))


def wav_rate(header: bytes) -> int | None:
    """The sample rate of a RIFF/WAVE header, or ``None`` when ``header`` is not one."""
    if len(header) < 28 or header[:4] != b"RIFF" or header[8:12] != b"WAVE":
        return None
    rate: int = struct.unpack_from("<I", header, 24)[0]
    return rate or None


async def next_frame(socket: AnySocket) -> bytes | str | None:
    """The next frame's data (bytes or text), or ``None`` once the client has gone."""
    message: Any = await socket.receive()
    if message["type"] != "websocket.receive":
        return None
    data = message.get("bytes")
    return data if data is not None else message.get("text") or ""


