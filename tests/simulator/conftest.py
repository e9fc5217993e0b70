"""The simulator suite talks to the session's simulator (``tests/conftest.py``) as a provider client would."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support import LiveServer


@pytest.fixture
def client(simulator: LiveServer, sim: httpx.Client) -> Iterator[httpx.Client]:
    """A client of the simulator's root; ``sim`` clears its faults and request log around the test."""
    with httpx.Client(base_url=simulator.url, timeout=10) as http:
        yield http
