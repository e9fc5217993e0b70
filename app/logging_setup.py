"""Logging: JSON lines in production, readable text in development, trace ids on every record.

The JSON lines come from python-json-logger; the text lines from the standard formatter.

Every record carries ``trace_id`` and ``span_id`` of the span current when it was logged (empty
when there is none), so a log line leads to its trace and back. Secret values from the settings
are masked in every value, whatever put them there, and in no name (:mod:`app.masking`).
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
from .masking import SecretMask

_OURS: Final = "_ai_gateway_handler"
# Libraries that log every upstream request at INFO: one line per provider call is noise.
_QUIET: Final = ("httpx", "httpx2", "httpcore")
PER_CONNECTION: Final = frozenset({
    '%s - "WebSocket %s" [accepted]', '%s - "WebSocket %s" %d', '%s - "WebSocket %s" 403',
    "connection open", "connection closed",
})
"""Uvicorn's INFO lines for each WebSocket handshake, open and close (``uvicorn.error``): up to
three lines a session, with its query string, repeated for the mounted simulator's side."""
KEPT: Final = frozenset({"timestamp", "level", "logger", "event.name", "trace_id", "span_id"})
"""JSON keys whose values are names, levels or ids: never masked."""


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


class PerConnectionFilter(logging.Filter):
    """Drops uvicorn's per-WebSocket INFO lines (:data:`PER_CONNECTION`), as ``access_log=False``
    drops its per-request ones: a session has its span, its metrics and, when it fails, its event;
    500 sessions must not write 1,500 lines. Its warnings and errors pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.INFO or record.msg not in PER_CONNECTION


class JsonFormatter(jsonlogger.JsonFormatter):
    """One JSON object per line (python-json-logger): timestamp, level, logger, message, trace
    ids while a span is current, every extra (an event's ``event.name`` and fields), exception;
    secrets masked in the values (:mod:`app.masking`), never in a key."""

    def __init__(self, secrets: list[tuple[str, str]]) -> None:
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
        return super().serialize_log_record(self._masking.fields(log_data, KEPT))


class TextFormatter(logging.Formatter):
    """``time LEVEL logger [trace span] message``, for people reading a terminal (an event's
    fields are in its message; the JSON lines carry them as keys)."""

    def __init__(self, secrets: list[tuple[str, str]]) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s [%(trace_id)s %(span_id)s] %(message)s")
        self._masking = SecretMask(secrets)

    def format(self, record: logging.LogRecord) -> str:
        if not getattr(record, "trace_id", ""):
            record.trace_id = record.span_id = "-"
        # A copy with the message masked (the record goes on to other handlers as it came); the
        # logger name and the layout are not masked.
        masked = logging.makeLogRecord({**vars(record), "msg": self._masking.text(record.getMessage()), "args": None,
                                        "exc_text": None})
        return super().format(masked)

    def formatException(self, ei: Any) -> str:  # logging's name
        return self._masking.text(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:  # logging's name
        return self._masking.text(super().formatStack(stack_info))


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
    server = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, PerConnectionFilter) for f in server.filters):
        server.addFilter(PerConnectionFilter())
    return handler


def secret_values(settings: Settings) -> list[tuple[str, str]]:
    """Every secret of the settings as ``(variable, value)``, and the passwords of URLs that carry one."""
    secrets: list[tuple[str, Secret | None]] = [("ADMIN_API_KEY", settings.admin_api_key)]
    secrets += [("GATEWAY_API_KEYS", key) for key in settings.gateway_api_keys]
    secrets += [(f"{name.upper()}_API_KEY", svc.api_key) for name, svc in settings.services.items()]
    values = [(name, s.get_secret_value()) for name, s in secrets if s is not None]
    urls = [("STATE_REDIS_URL", settings.state_redis_url), ("ALERTMANAGER_URL", settings.alertmanager_url),
            *((f"{name.upper()}_BASE_URL", svc.base_url) for name, svc in settings.services.items())]
    if settings.state_redis_url:
        values.append(("STATE_REDIS_URL", settings.state_redis_url))  # the whole URL, whatever carries its password
    values += [(name, password) for name, url in urls if url and (password := urlsplit(url).password)]
    return values
