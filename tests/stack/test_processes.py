"""``app.stack.processes.running``: a free port taken by another process before the program meant
for it binds it (other test runs share the machine) makes the stack start again on new ports."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.stack import processes
from app.stack.processes import Options, running
from tests.support import free_port


@pytest.fixture
def taken() -> Iterator[int]:
    """A loopback port some other process listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def test_a_port_taken_meanwhile_starts_the_stack_again_on_new_ports(
    taken: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    handed_out: list[int] = []

    def first_one_taken() -> int:
        handed_out.append(taken if not handed_out else free_port())  # the first: the Collector's OTLP/gRPC port
        return handed_out[-1]

    monkeypatch.setattr(processes, "free_port", first_one_taken)
    with running("http://127.0.0.1:9", tmp_path, Options(scrape_gateway=False)) as stack:
        assert stack.endpoints.otlp_grpc != f"http://127.0.0.1:{taken}"
        assert all(daemon.ready() for daemon in stack.daemons.values())
    assert "address already in use" in (tmp_path / "otelcol.log").read_text()


def test_free_ports_lie_outside_the_kernels_ephemeral_range_and_are_never_handed_out_twice() -> None:
    """An outgoing connection or a port-0 bind takes its port from the ephemeral range; one took a
    port handed out from there before the gateway meant for it bound it (CI, bench/overhead.py)."""
    low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    ports = [free_port() for _ in range(200)]
    assert len(set(ports)) == len(ports)
    assert not [port for port in ports if low <= port <= high]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", ports[-1]))  # nothing holds it
