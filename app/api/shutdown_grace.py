"""Open live sessions keep going while the server shuts down, until ``SHUTDOWN_GRACE`` is nearly
over; then each gets 1012 (service restart). Uvicorn's own WebSocket protocol sends 1012 as soon as
shutdown starts, which would cut every caller's utterance short however long the grace."""

from __future__ import annotations

import asyncio

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

MARGIN = 1.0
"""Seconds before the grace ends at which sessions are closed, so that each can close its
provider's socket and be recorded before the server cancels what is left."""


class GraceWebSockets(WebSocketsSansIOProtocol):
    """Uvicorn's WebSocket protocol, with the close of shutdown deferred by the grace less :data:`MARGIN`."""

    def shutdown(self) -> None:
        grace = self.config.timeout_graceful_shutdown or 0
        delay = max(0.0, grace - min(MARGIN, grace / 2))
        if delay == 0 or not self.handshake_complete:
            super().shutdown()
            return
        asyncio.get_running_loop().call_later(delay, super().shutdown)
