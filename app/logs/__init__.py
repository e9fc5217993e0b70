"""Logs, the third signal: named events from the one door and the gateway's life, storm control,
and their export as OpenTelemetry log records.

Every event is one stdlib ``logging`` record on the ``app.events`` logger whose ``event.name``
extra names it (:mod:`.events`); the root handlers write it as a JSON or text line
(:mod:`app.logging_setup`) and, when OTLP is on, as an OTel log record (:mod:`.otlp`).
"""
