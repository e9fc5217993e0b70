"""One simulator server for the whole simulator suite; every test starts with no faults and an empty request log."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from app.simulator import create_simulator_app
from tests.support import LiveServer, live_server


@pytest.fixture(scope="session")
def server() -> Iterator[LiveServer]:
    with live_server(create_simulator_app()) as running:
        yield running


@pytest.fixture
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as http:
        http.delete("/_sim/faults").raise_for_status()
        http.delete("/_sim/requests").raise_for_status()
        yield http
        http.delete("/_sim/faults").raise_for_status()
