"""Fixtures for the whole suite: one simulator server, and its control API for each test."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from app.simulator import create_simulator_app
from tests.support import LiveServer, live_server


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
