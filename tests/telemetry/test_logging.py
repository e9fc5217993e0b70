"""Logs: JSON lines in production, text in development, trace ids, secrets masked."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from app.config import load_settings
from app.logging_setup import setup_logging
from app.telemetry import Telemetry

pytestmark = pytest.mark.unit

SECRET = "sk-live-0123456789abcdef"


@pytest.fixture
def restore_root() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
    root.setLevel(level)


def _lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


@pytest.mark.usefixtures("restore_root")
def test_production_logs_are_json_lines_with_the_current_trace() -> None:
    settings = load_settings({"ENVIRONMENT": "production", "OPENAI_API_KEY": SECRET, "ADMIN_API_KEY": "adm-key-42"})
    stream = io.StringIO()
    setup_logging(settings, stream)
    telemetry = Telemetry(settings)
    log = logging.getLogger("app.test")
    with telemetry.tracer.start_as_current_span("call") as span:
        log.info("calling %s", "sarvam", extra={"provider": "sarvam"})
    log.warning("no span here; key %s and %s", SECRET, "adm-key-42")
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("failed")
    telemetry.shutdown()

    inside, outside, failed = (json.loads(line) for line in _lines(stream))
    context = span.get_span_context()
    assert inside["trace_id"] == format(context.trace_id, "032x")
    assert inside["span_id"] == format(context.span_id, "016x")
    assert (inside["level"], inside["logger"], inside["message"]) == ("info", "app.test", "calling sarvam")
    assert inside["provider"] == "sarvam" and inside["timestamp"].endswith("+00:00")
    assert "trace_id" not in outside
    assert SECRET not in stream.getvalue() and "adm-key-42" not in stream.getvalue()
    assert outside["message"] == "no span here; key ********** and **********"
    assert "ValueError: boom" in failed["exception"]


@pytest.mark.usefixtures("restore_root")
def test_development_logs_are_text_with_trace_ids() -> None:
    settings = load_settings({})
    stream = io.StringIO()
    setup_logging(settings, stream)
    telemetry = Telemetry(settings)
    with telemetry.tracer.start_as_current_span("call") as span:
        logging.getLogger("app.test").info("hello")
    logging.getLogger("app.test").debug("hidden at info level")
    logging.getLogger("app.test").info("outside")
    telemetry.shutdown()

    inside, outside = _lines(stream)
    trace_id = format(span.get_span_context().trace_id, "032x")
    assert "INFO" in inside and "app.test" in inside and inside.endswith("hello")
    assert f"[{trace_id} " in inside
    assert "[- -] outside" in outside


@pytest.mark.usefixtures("restore_root")
def test_setup_twice_keeps_one_handler_and_quiets_per_request_client_logs() -> None:
    first, second = io.StringIO(), io.StringIO()
    setup_logging(load_settings({}), first)
    setup_logging(load_settings({"LOG_LEVEL": "debug"}), second)
    logging.getLogger("app.test").debug("once")
    logging.getLogger("httpx2").info("HTTP Request: POST ...")
    assert first.getvalue() == ""
    assert len(_lines(second)) == 1 and _lines(second)[0].endswith("once")
