"""On SIGTERM, ``python -m app serve`` lets open live sessions go on until ``SHUTDOWN_GRACE`` is
nearly over (one second before), then closes them with 1012, and exits 0."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from tests.hardening.servers import gateway_process, simulated_providers, simulator_process

from . import raw

pytestmark = pytest.mark.stack

GRACE = 4.0
SECOND = b"\0" * 32000


async def test_open_sessions_get_1012_at_the_end_of_the_grace(tmp_path: Path) -> None:
    with simulator_process(tmp_path) as sim, \
            gateway_process({**simulated_providers(sim.url), "SHUTDOWN_GRACE": str(GRACE)}, tmp_path) as gateway:
        async with raw.open_session(gateway.url) as socket:
            await socket.send(SECOND)
            assert json.loads(await socket.recv())["type"] == "Results"
            gateway.terminate()
            stopping = time.monotonic()
            await asyncio.sleep(1.0)
            await socket.send(SECOND)  # the session still works while the server shuts down
            assert json.loads(await socket.recv())["start"] == 1.0
            code, _ = await raw.closed(socket)
            closed_after = time.monotonic() - stopping
        assert code == 1012
        assert GRACE - 1.5 <= closed_after <= GRACE
        assert await asyncio.to_thread(gateway.process.wait, 30) == 0
