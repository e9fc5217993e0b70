"""Helpers shared by the tests: real servers on free loopback ports, waiting for a condition, a clock
the test moves by hand."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import httpx
import pytest
import uvicorn

from app.stack import binaries
from app.stack.processes import free_port

__all__ = ["T0", "Clock", "LiveServer", "free_port", "live_server", "stack_binary", "wait_until",
           "wait_until_async"]

T = TypeVar("T")

T0 = 1_699_999_200.0
"""A round start time for a :class:`Clock`: a multiple of an hour, so of every bucket and step the
tests use."""


def stack_binary(name: str) -> str:
    """The path of the built stack program ``name`` (``.stack/bin/``); fails the test, never skips,
    where it is not built."""
    try:
        return str(binaries.binary(name))
    except binaries.NotBuilt as error:
        pytest.fail(str(error))


KEEPALIVE = httpx.Limits(keepalive_expiry=1.0)
"""For the tests' long-lived clients of a server in another thread or process: a pooled connection
is dropped after 1 s idle, well before uvicorn closes it (after 5 s). A request sent on a connection
in the moment the server closes it fails with a reset; one did in CI, after a fixture's wait of
about 5 s between a replica's readiness check and the test's first request."""
LOOP_LAG_WARNING = "60s"
"""``ALERT_EVENT_LOOP_LAG_WARNING`` of the tests' gateways and rule files: a machine busy with other
tests lags, and no test may fail on an alert it did not cause; a test of that alert sets its own."""


def wait_until(probe: Callable[[], T | None], timeout: float = 10.0,
               what: str | Callable[[], str] = "a condition", interval: float = 0.02) -> T:
    """Poll ``probe`` until it returns something truthy, and return that; fails the test naming
    ``what`` (and the last value seen) after ``timeout`` seconds. ``what`` may be a function, to
    describe the state at the time of failure."""
    started = time.monotonic()
    while not (result := probe()):
        _give_up_after(started, timeout, what, result)
        time.sleep(interval)
    return result


async def wait_until_async(probe: Callable[[], T | None], timeout: float = 10.0,
                           what: str | Callable[[], str] = "a condition", interval: float = 0.05) -> T:
    """:func:`wait_until` for a test running in the event loop: ``probe`` runs in a worker thread (it
    may make blocking HTTP calls) and the loop runs between tries."""
    started = time.monotonic()
    while not (result := await asyncio.to_thread(probe)):
        _give_up_after(started, timeout, what, result)
        await asyncio.sleep(interval)
    return result


def _give_up_after(started: float, timeout: float, what: str | Callable[[], str], last: object) -> None:
    if time.monotonic() - started > timeout:
        described = what if isinstance(what, str) else what()
        raise AssertionError(f"timed out after {timeout:g}s waiting for {described} (last: {last!r})")


class Clock:
    """A clock the test moves by hand, for code that takes one (``clock: Callable[[], float]``)."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


class LiveServer:
    """Runs an ASGI app with uvicorn in a background thread on a real loopback port."""

    def __init__(self, app: Any, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.run(self.server.serve())

    def start(self) -> LiveServer:
        self.thread.start()

        def started() -> bool:
            if not self.thread.is_alive():
                raise RuntimeError(f"server on port {self.port} did not start")
            return self.server.started

        wait_until(started, 15, f"the server on port {self.port} to start", interval=0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


@contextlib.contextmanager
def live_server(app: Any, port: int | None = None) -> Iterator[LiveServer]:
    server = LiveServer(app, port).start()
    try:
        yield server
    finally:
        server.stop()
