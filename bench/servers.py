"""Servers the benchmarks run as subprocesses on free loopback ports: start, wait, read, stop."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
GATEWAY_VARIABLES = ("SARVAM_", "DEEPGRAM_", "OPENAI_", "RAG_", "OTEL_", "ALERT", "STATE_", "GATEWAY_", "ADMIN_",
                     "METRICS_", "ENABLE_METRICS", "ENVIRONMENT", "RATE_LIMIT", "LOG_", "FALLBACKS_",
                     "HEALTH_CHECK", "MONITORING_", "SHUTDOWN_")
"""Prefixes of the gateway's settings, which the benchmarks set themselves."""


def clean_environment(extra: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without any gateway setting, plus ``extra``."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith(GATEWAY_VARIABLES)}, **extra}


def machine_cpu() -> tuple[int, int]:
    """The machine's stolen and total CPU time so far, in clock ticks (Linux ``/proc/stat``).

    Steal is the time this virtual machine's cores were ready to run and the host ran something
    else: while it is more than a few percent, latency tails measure the host's other tenants.
    """
    ticks = [int(n) for n in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return ticks[7], sum(ticks)


def steal_share(before: tuple[int, int], after: tuple[int, int]) -> float:
    """The share of the machine's CPU time the host took between two :func:`machine_cpu` readings."""
    total = after[1] - before[1]
    return round((after[0] - before[0]) / total, 3) if total else 0.0


@dataclass
class Server:
    """A server subprocess on a loopback port; ``direct`` servers are called on the simulator's routes."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    ready_path: str
    """Answers 200 once the server is ready."""
    direct: bool = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cpu_seconds(self) -> float:
        """User plus system CPU time of the process and its children so far (Linux ``/proc``)."""
        total = 0
        for pid in self.processes():
            with contextlib.suppress(OSError):  # a process that ended meanwhile
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])
        return total / os.sysconf("SC_CLK_TCK")

    def rss_mib(self) -> float:
        """Resident memory of the process and its children (Linux ``/proc``)."""
        kib = 0
        for pid in self.processes():
            with contextlib.suppress(OSError):
                status = Path(f"/proc/{pid}/status").read_text()
                kib += int(status.split("VmRSS:", 1)[1].split()[0])
        return kib / 1024

    def processes(self) -> list[int]:
        """The server's process and its descendants (``--workers``: the supervisor and each worker)."""
        pids = [self.process.pid]
        for pid in pids:
            with contextlib.suppress(OSError):
                for task in Path(f"/proc/{pid}/task").iterdir():
                    pids += [int(child) for child in (task / "children").read_text().split()]
        return pids


@contextmanager
def started(name: str, argv: Sequence[str], port: int, ready_path: str, logs: Path,
            env: Mapping[str, str] | None = None, direct: bool = False, cwd: Path = ROOT) -> Iterator[Server]:
    """Run a server subprocess in ``cwd`` for the duration of the block (its output goes to
    ``logs/<name>.log``); stopped with SIGTERM, as a process manager would."""
    log = logs / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen([*argv], cwd=cwd, env=dict(env or os.environ), stdout=out,
                                   stderr=subprocess.STDOUT)
    try:
        yield Server(name, port, process, log, ready_path, direct)
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def redis_server(port: int, logs: Path) -> AbstractContextManager[Server]:
    """A throwaway ``redis-server`` without persistence on a loopback port, for the block."""
    argv = [shutil.which("redis-server") or "redis-server", "--port", str(port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no"]
    return started("redis", argv, port, "", logs)


async def wait_ready(session: aiohttp.ClientSession, servers: Sequence[Server], timeout: float = 60.0) -> None:
    """Wait until each server answers its ``ready_path`` with 200; raise with its log if it exits or
    is not ready in time."""
    deadline = time.monotonic() + timeout
    for server in servers:
        while True:
            if server.process.poll() is not None:
                raise RuntimeError(f"{server.name} exited ({server.process.returncode}):\n"
                                   f"{server.log.read_text(errors='replace')}")
            try:
                async with session.get(server.url + server.ready_path) as response:
                    if response.status == 200:
                        break
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{server.name} not ready after {timeout:g}s:\n"
                                   f"{server.log.read_text(errors='replace')}")
            await asyncio.sleep(0.1)
