"""``gateway.start`` (the effective configuration, redacted), the warning about short secrets, and
``gateway.stop``."""

from __future__ import annotations

import logging

from .. import __version__
from ..config import Settings
from ..logging_setup import secret_values
from ..masking import MIN_SEARCHED, SecretMask
from . import events

log = logging.getLogger("app.config")


def started(settings: Settings) -> None:
    """The start-up summary: what an operator needs to know the gateway runs as configured, and
    one warning per secret too short to be masked inside text (naming its variable, not its value).

    The configuration is the redacted one ``/health/configuration`` shows (no secret, only
    whether one is set); the log handlers mask secret values on top of that.
    """
    modes = ", ".join(f"{name} {svc.mode}" for name, svc in settings.services.items())
    state = "redis" if settings.state_redis_url else "memory"
    events.emit(logging.INFO, events.GATEWAY_START,
                f"gateway {__version__} starting ({settings.environment}; providers: {modes}; state: {state})",
                version=__version__, config=settings.public_dict())
    for variable in SecretMask(secret_values(settings)).unsearched:
        log.warning("%s is shorter than %d characters: the logs mask it only where a value is exactly it, not "
                    "inside other text (it would match ordinary words)", variable, MIN_SEARCHED,
                    extra={"variable": variable})


def stopping(uptime: float) -> None:
    events.emit(logging.INFO, events.GATEWAY_STOP, f"gateway stopping after {uptime:.1f}s",
                uptime_s=round(uptime, 3))
