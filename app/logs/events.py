"""The event names (a contract: ``docs/DESIGN.md``) and the one function that writes them.

An event is a ``logging`` record with ``event.name`` and its fields as extras: the JSON line shows
them as keys, the OTLP handler promotes ``event.name`` to the record's event name and the rest to
attributes. Nothing here formats unless the level is enabled.
"""

from __future__ import annotations

import logging
from typing import Any, Final

CALL_FAILED: Final = "provider.call.failed"
REJECTED: Final = "provider.rejected"
HOLD: Final = "provider.hold"
BREAKER_TRANSITION: Final = "breaker.transition"
ALERT_TRANSITION: Final = "alert.transition"
ALERT_DELIVERY_FAILED: Final = "alert.delivery_failed"
STATE_BACKEND_TRANSITION: Final = "state_backend.transition"
GATEWAY_START: Final = "gateway.start"
GATEWAY_STOP: Final = "gateway.stop"
SUMMARY: Final = "log.summary"

EVENT_NAME: Final = "event.name"
"""The extra (and JSON key) that names an event; OpenTelemetry's ``event.name``."""
LOGGER: Final = logging.getLogger("app.events")


def emit(level: int, name: str, message: str, **fields: Any) -> None:
    """Write event ``name`` at ``level``; ``message`` is for people, ``fields`` for machines.

    Fields that are ``None`` are left out, so that a line says only what is known.
    """
    if LOGGER.isEnabledFor(level):
        extra = {k: v for k, v in fields.items() if v is not None}
        extra[EVENT_NAME] = name
        LOGGER.log(level, message, extra=extra)
