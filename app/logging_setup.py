"""Logging: JSON lines in production, readable text in development, trace ids on every record.

Every record carries ``trace_id`` and ``span_id`` of the span current when it was logged (empty
when there is none), so a log line leads to its trace and back. Secret values from the settings
are masked in the final line, whatever put them there.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, Final, TextIO

from opentelemetry import trace

from .config import Secret, Settings

MASK: Final = "**********"
_OURS: Final = "_ai_gateway_handler"
# Libraries that log every upstream request at INFO: one line per provider call is noise.
_QUIET: Final = ("httpx", "httpx2", "httpcore")
# Attributes every LogRecord has; anything else came in through ``extra=``.
_STANDARD: Final = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime", "trace_id", "span_id", "taskName"}


class TraceContextFilter(logging.Filter):
    """Adds ``trace_id`` and ``span_id`` of the current span to each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            record.trace_id = format(context.trace_id, "032x")
            record.span_id = format(context.span_id, "016x")
        else:
            record.trace_id = record.span_id = ""
        return True


class _Masking(logging.Formatter):
    """Masks the settings' secret values in whatever the wrapped formatting produced."""

    def __init__(self, secrets: list[str], fmt: str | None = None) -> None:
        super().__init__(fmt)
        # Longest first, so that a key containing another is masked whole.
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def mask(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return text


class JsonFormatter(_Masking):
    """One JSON object per line: time, level, logger, message, trace ids, extras, exception."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        trace_id = getattr(record, "trace_id", "")
        if trace_id:
            data["trace_id"] = trace_id
            data["span_id"] = getattr(record, "span_id", "")
        data.update({k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")})
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return self.mask(json.dumps(data, default=str, ensure_ascii=False))


class TextFormatter(_Masking):
    """``time LEVEL logger [trace span] message``, for people reading a terminal."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__(secrets, "%(asctime)s %(levelname)-7s %(name)s [%(trace_id)s %(span_id)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        if not getattr(record, "trace_id", ""):
            record.trace_id = record.span_id = "-"
        return self.mask(super().format(record))


def setup_logging(settings: Settings, stream: TextIO | None = None) -> logging.Handler:
    """Install the gateway's handler on the root logger (replacing one installed before)."""
    secrets = _secret_values(settings)
    formatter: logging.Formatter = JsonFormatter(secrets) if settings.log_format == "json" else TextFormatter(secrets)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    handler.addFilter(TraceContextFilter())
    setattr(handler, _OURS, True)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _OURS, False)]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    for name in _QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
    return handler


def _secret_values(settings: Settings) -> list[str]:
    secrets: list[Secret | None] = [settings.admin_api_key, *settings.gateway_api_keys]
    secrets += [svc.api_key for svc in settings.services.values()]
    values = [s.get_secret_value() for s in secrets if s is not None]
    if settings.state_redis_url:
        values.append(settings.state_redis_url)  # may carry a password
    return values
