"""A gateway whose log lines (JSON or text) are captured, and helpers to read its events."""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

from app.config import load_settings
from app.logging_setup import setup_logging
from tests.gateway import TEST_ENV, Gateway, running_gateway
from tests.support import wait_until

T = TypeVar("T")


class Lines:
    """The lines written so far (the stream is written by the server's thread)."""

    def __init__(self, stream: io.StringIO) -> None:
        self.stream = stream

    def text(self) -> str:
        return self.stream.getvalue()

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.text().splitlines()]

    def events(self, name: str, **fields: Any) -> list[dict[str, Any]]:
        """Events called ``name`` whose fields include ``fields``."""
        return [r for r in self.records()
                if r.get("event.name") == name and all(r.get(k) == v for k, v in fields.items())]

    def wait(self, found: Callable[[], T | None], timeout: float = 5.0) -> T:
        return wait_until(found, timeout, lambda: f"a log line; logged:\n{self.text()[-3000:]}")


@contextlib.contextmanager
def logged_gateway(env: Mapping[str, str] | None = None) -> Iterator[tuple[Gateway, Lines]]:
    """A running gateway with the logging ``python -m app`` installs (JSON unless ``LOG_FORMAT``
    says text); the lines stay readable after the gateway stopped."""
    env = {"LOG_FORMAT": "json", **(env or {})}
    stream = io.StringIO()
    root = logging.getLogger()
    level = root.level
    handler = setup_logging(load_settings({**TEST_ENV, **env}), stream)
    try:
        with running_gateway(env) as gateway:
            yield gateway, Lines(stream)
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
