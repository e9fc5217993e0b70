"""WebSocket frames as both sides read them."""

from __future__ import annotations

import json
from typing import Any


def json_message(frame: bytes | str) -> dict[str, Any]:
    """A text frame's JSON object, or an empty one for a binary frame and anything else."""
    if isinstance(frame, bytes):
        return {}
    try:
        data = json.loads(frame)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
