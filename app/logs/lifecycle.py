"""``gateway.start`` (the effective configuration, redacted) and ``gateway.stop``."""

from __future__ import annotations

import logging

from .. import __version__
from ..config import Settings
from . import events


def started(settings: Settings) -> None:
    """The start-up summary: what an operator needs to know the gateway runs as configured.

    The configuration is the redacted one ``/health/configuration`` shows (no secret, only
    whether one is set); the log handlers mask secret values on top of that.
    """
    modes = ", ".join(f"{name} {svc.mode}" for name, svc in settings.services.items())
    state = "redis" if settings.state_redis_url else "memory"
    events.emit(logging.INFO, events.GATEWAY_START,
                f"gateway {__version__} starting ({settings.environment}; providers: {modes}; state: {state})",
                version=__version__, config=settings.public_dict())


def stopping(uptime: float) -> None:
    events.emit(logging.INFO, events.GATEWAY_STOP, f"gateway stopping after {uptime:.1f}s",
                uptime_s=round(uptime, 3))
