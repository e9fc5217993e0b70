from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan

from tests.support import LiveServer, live_server, wait_until

from .gateway import Harness, build

Gateway = Callable[..., contextlib.AbstractContextManager[tuple[httpx.Client, Harness]]]


@pytest.fixture(autouse=True)
def _no_otel_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests set the OTEL_* variables they need; none leak in from the shell."""
    for name in list(os.environ):
        if name.startswith("OTEL_"):
            monkeypatch.delenv(name)


@pytest.fixture
def gateway(simulator: LiveServer, sim: httpx.Client) -> Gateway:
    """``with gateway({"ENV": "value"}) as (client, harness)``: a test gateway on a real port."""

    @contextlib.contextmanager
    def start(environ: dict[str, str] | None = None) -> Iterator[tuple[httpx.Client, Harness]]:
        app, harness = build(simulator.url, environ)
        try:
            with live_server(app) as server, httpx.Client(base_url=server.url, timeout=10) as client:
                yield client, harness
        finally:
            harness.telemetry.shutdown()

    return start


def wait_for_spans(harness: Harness, predicate: Callable[[list[ReadableSpan]], bool],
                   timeout: float = 5.0) -> list[ReadableSpan]:
    """The finished spans once ``predicate`` holds (a server span ends just after its response)."""

    def finished() -> list[ReadableSpan] | None:
        spans = list(harness.spans.get_finished_spans())
        return spans if predicate(spans) else None

    return wait_until(finished, timeout, "the finished spans", interval=0.01)


def by_name(spans: list[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


@pytest.fixture
def harness() -> Iterator[Harness]:
    """A harness without a server, for calls made straight through the pipeline."""
    _, harness = build("http://127.0.0.1:9", {"OPENAI_RATE_LIMIT": "100000", "OPENAI_MODEL": "gpt-test"})
    yield harness
    harness.telemetry.shutdown()
