"""Log records over OTLP: the logging handler and a processor that masks secrets before export.

The handler is opentelemetry-instrumentation-logging's ``LoggingHandler`` (the SDK's own is
deprecated in its favour): it turns each ``logging`` record into an OTel log record with the
current trace context and promotes the ``event.name`` extra to the record's event name. What is
ours is the secret masking, a log record processor placed before the exporting one (the OTel way
to redact), because the stream formatters' masking never sees these records.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider, LogRecordProcessor, ReadWriteLogRecord

from ..masking import SecretMask
from .events import EVENT_NAME

DUPLICATES: Final = ("trace_id", "span_id")
"""Extras the text and JSON lines need, which the record's own trace context already carries."""


class MaskSecrets(LogRecordProcessor):
    """Masks secrets in a record's body and attribute values (:mod:`app.masking`); its event
    name, its scope (the logger's name) and the attributes' names are left as they are."""

    def __init__(self, secrets: list[tuple[str, str]]) -> None:
        self._mask = SecretMask(secrets)

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        record = log_record.log_record
        record.body = self._mask.value("body", record.body)
        attributes: Any = record.attributes
        if attributes:
            for key in DUPLICATES:
                attributes.pop(key, None)
            for key, value in list(attributes.items()):
                if key != EVENT_NAME:
                    attributes[key] = self._mask.value(key, value)

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class _NotOpenTelemetry(logging.Filter):
    """Keeps the SDK's own warnings (an exporter that cannot reach its endpoint) out of the
    export, where each failed export would log another one."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.name.startswith("opentelemetry")


def log_handler(provider: LoggerProvider) -> logging.Handler:
    """A root-logger handler that sends every record through ``provider``."""
    handler = LoggingHandler(logger_provider=provider)
    handler.addFilter(_NotOpenTelemetry())
    return handler
