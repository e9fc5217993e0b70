"""Log records over OTLP: the logging handler and a processor that masks secrets before export.

The handler is opentelemetry-instrumentation-logging's ``LoggingHandler`` (the SDK's own is
deprecated in its favour): it turns each ``logging`` record into an OTel log record with the
current trace context and promotes the ``event.name`` extra to the record's event name. What is
ours is the secret masking, a log record processor placed before the exporting one (the OTel way
to redact), because the stream formatters' masking never sees these records.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Final

from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider, LogRecordProcessor, ReadWriteLogRecord

from ..logging_setup import SecretMask

DUPLICATES: Final = ("trace_id", "span_id")
"""Extras the text and JSON lines need, which the record's own trace context already carries."""


class MaskSecrets(LogRecordProcessor):
    """Masks secret values in a record's body and attributes, nested ones included."""

    def __init__(self, secrets: list[str]) -> None:
        self._mask = SecretMask(secrets)

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        record = log_record.log_record
        record.body = self._masked(record.body)
        attributes: Any = record.attributes
        if attributes:
            for key in DUPLICATES:
                attributes.pop(key, None)
            for key, value in list(attributes.items()):
                attributes[key] = self._masked(value)

    def _masked(self, value: Any) -> Any:
        if isinstance(value, str):
            return self._mask.mask(value)
        if isinstance(value, Mapping):
            return {k: self._masked(v) for k, v in value.items()}
        if isinstance(value, Sequence) and not isinstance(value, bytes):
            return [self._masked(v) for v in value]
        return value

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
