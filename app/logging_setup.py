"""Logging: JSON lines in production, readable text in development, trace ids on every record.

The JSON lines come from python-json-logger; the text lines from the standard formatter.

Every record carries ``trace_id`` and ``span_id`` of the span current when it was logged (empty
when there is none), so a log line leads to its trace and back. Secret values from the settings
are masked in the final line, whatever put them there.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Final, TextIO
from urllib.parse import urlsplit

from opentelemetry import trace
from pythonjsonlogger import json as jsonlogger
from pythonjsonlogger.core import RESERVED_ATTRS

from .config import Secret, Settings

MASK: Final = "**********"
_OURS: Final = "_ai_gateway_handler"
# Libraries that log every upstream request at INFO: one line per provider call is noise.
_QUIET: Final = ("httpx", "httpx2", "httpcore")


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


class SecretMask:
    """Masks the settings' secret values in text, longest first (a key containing another is
    masked whole)."""

    def __init__(self, secrets: list[str]) -> None:
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def mask(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return text


class JsonFormatter(jsonlogger.JsonFormatter):
    """One JSON object per line (python-json-logger): timestamp, level, logger, message, trace
    ids while a span is current, every extra (an event's ``event.name`` and fields), exception;
    secret values masked in the serialised line."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__("%(levelname)s %(name)s %(message)s", timestamp=True, json_ensure_ascii=False,
                         rename_fields={"levelname": "level", "name": "logger", "exc_info": "exception"},
                         reserved_attrs=[*RESERVED_ATTRS, "taskName", "trace_id", "span_id"])
        self._masking = SecretMask(secrets)

    def add_fields(self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]) -> None:
        super().add_fields(log_data, record, message_dict)
        log_data["level"] = record.levelname.lower()
        log_data["timestamp"] = log_data["timestamp"].isoformat(timespec="milliseconds")
        if trace_id := getattr(record, "trace_id", ""):
            log_data["trace_id"] = trace_id
            log_data["span_id"] = getattr(record, "span_id", "")

    def serialize_log_record(self, log_data: dict[str, Any]) -> str:
        return self._masking.mask(super().serialize_log_record(log_data))


class TextFormatter(logging.Formatter):
    """``time LEVEL logger [trace span] message``, for people reading a terminal (an event's
    fields are in its message; the JSON lines carry them as keys)."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s [%(trace_id)s %(span_id)s] %(message)s")
        self._masking = SecretMask(secrets)

    def format(self, record: logging.LogRecord) -> str:
        if not getattr(record, "trace_id", ""):
            record.trace_id = record.span_id = "-"
        return self._masking.mask(super().format(record))


def setup_logging(settings: Settings, stream: TextIO | None = None) -> logging.Handler:
    """Install the gateway's handler on the root logger (replacing one installed before)."""
    secrets = secret_values(settings)
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


def secret_values(settings: Settings) -> list[str]:
    """Every secret value of the settings, and the passwords of URLs that carry one."""
    secrets: list[Secret | None] = [settings.admin_api_key, *settings.gateway_api_keys]
    secrets += [svc.api_key for svc in settings.services.values()]
    values = [s.get_secret_value() for s in secrets if s is not None]
    if settings.state_redis_url:
        values.append(settings.state_redis_url)  # may carry a password
    urls = [settings.alertmanager_url, *(svc.base_url for svc in settings.services.values())]
    values += [password for url in urls if url and (password := urlsplit(url).password)]
    return values
