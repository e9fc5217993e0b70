"""Fixtures for the whole suite (one simulator server, and its control API for each test) and
the markers that let a part of it run alone:

* ``unit``: no server, no process, no socket listening; ``python -m pytest -m unit`` runs them in
  seconds. A test marked ``unit`` that listens on a socket or starts a process fails.
* ``stack``: real Prometheus, Alertmanager or Redis binaries, or gateways in processes of their
  own (everything under ``tests/stack/`` is marked here);
* ``browser``: headless Chromium.

Tests with none of these run the gateway or the simulator in-process on a loopback port.
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.simulator import create_simulator_app
from tests.support import LiveServer, live_server

STACK_DIR = Path(__file__).parent / "stack"
SERVER_FIXTURES = {"simulator", "sim"}
"""Fixtures that start a server: a test using them is never a unit test."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(STACK_DIR):
            item.add_marker(pytest.mark.stack)
        if item.get_closest_marker("unit") is None:
            continue
        others = [m for m in ("stack", "browser") if item.get_closest_marker(m) is not None]
        servers = SERVER_FIXTURES.intersection(getattr(item, "fixturenames", ()))
        if others or servers:
            raise pytest.UsageError(f"{item.nodeid} is marked unit but uses {others or sorted(servers)}")


@pytest.fixture(autouse=True)
def _unit_tests_start_nothing(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """In a test marked ``unit``, listening on a socket or starting a process fails the test."""
    if request.node.get_closest_marker("unit") is None:
        return

    def refused(*_: object, **__: object) -> None:
        raise AssertionError(f"{request.node.nodeid} is marked unit but starts a server or a process")

    monkeypatch.setattr(socket.socket, "listen", refused)
    monkeypatch.setattr(subprocess.Popen, "__init__", refused)


@pytest.fixture(scope="session")
def simulator() -> Iterator[LiveServer]:
    """The simulated providers on a loopback port, one server for the session."""
    with live_server(create_simulator_app()) as server:
        yield server


@pytest.fixture
def sim(simulator: LiveServer) -> Iterator[httpx.Client]:
    """The simulator's control API (``/_sim``), with faults and the request log cleared around each test."""
    with httpx.Client(base_url=simulator.url + "/_sim", timeout=10) as client:
        client.delete("/faults").raise_for_status()
        client.delete("/requests").raise_for_status()
        yield client
        client.delete("/faults").raise_for_status()
