"""WebSocket close codes (RFC 6455, section 7.4.1) the gateway and the simulator send."""

from __future__ import annotations

from typing import Final

NORMAL: Final = 1000
"""The session ended as asked (the client's close, or the provider's after its last result)."""
GOING_AWAY: Final = 1001
"""The caller went away (the provider is told so)."""
POLICY: Final = 1008
"""The gateway refused the session or ended it for the caller's input (key, audio format, frame
size, the session's length or idleness); the reason starts with the ``error_type``."""
INTERNAL: Final = 1011
"""The provider failed the session (its error close, a dropped socket, no first result in time)."""
TRY_AGAIN_LATER: Final = 1013
"""The gateway refused the session for now (rate limit, bulkhead full, circuit open)."""
MAX_REASON_BYTES: Final = 123
"""A close frame's reason is at most 123 bytes of UTF-8."""


def reason(error_type: str, detail: str) -> str:
    """A close reason naming the error type first, cut to what a close frame carries."""
    text = f"{error_type}: {detail}".encode()[:MAX_REASON_BYTES]
    return text.decode(errors="ignore")
