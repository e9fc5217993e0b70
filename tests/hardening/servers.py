"""Real processes for the hardening tests: ``redis-server``, the standalone simulator and gateways
started with ``python -m app serve``, each on a free loopback port."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import redis

from tests.support import KEEPALIVE, LOOP_LAG_WARNING, free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]
REDIS_SERVER = "/usr/bin/redis-server"

# Quiet, fast defaults; each test adds what it exercises.
BASE_ENV = {
    "HEALTH_CHECK_INTERVAL": "3600",
    "ALERT_EVAL_INTERVAL": "3600",
    "METRICS_INTERVAL": "3600",
    "ALERT_EVENT_LOOP_LAG_WARNING": LOOP_LAG_WARNING,
    "LOG_FORMAT": "json",
    "LOG_LEVEL": "info",
}


def clean_environ(extra: Mapping[str, str]) -> dict[str, str]:
    """The test's environment without gateway settings from the shell, plus ``extra``."""
    keep = {k: v for k, v in os.environ.items()
            if not k.startswith(("SARVAM_", "DEEPGRAM_", "OPENAI_", "RAG_", "OTEL_", "ALERT", "STATE_", "GATEWAY_",
                                 "ADMIN_", "METRICS_", "ENVIRONMENT", "SHUTDOWN_", "RATE_LIMIT"))}
    return {**keep, **BASE_ENV, **extra, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}


class RedisServer:
    """A throwaway ``redis-server`` without persistence; stop and start it again on the same port."""

    def __init__(self, port: int | None = None, password: str | None = None) -> None:
        if shutil.which(REDIS_SERVER) is None:
            raise RuntimeError(f"{REDIS_SERVER} is missing: install the redis-server package")
        self.port = port or free_port()
        self.password = password
        auth = f":{password}@" if password else ""
        self.url = f"redis://{auth}127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> RedisServer:
        args = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        if self.password:
            args += ["--requirepass", self.password]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        process = self.process

        def answering() -> bool:
            assert process.poll() is None, f"redis-server exited {process.returncode}"
            try:
                with self.client() as client:
                    return bool(client.ping())
            except redis.RedisError:
                return False

        wait_until(answering, 10, f"redis-server to start on port {self.port}", interval=0.05)
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, password=self.password, socket_timeout=2)

    def command_calls(self) -> dict[str, int]:
        """Calls per command since start (``INFO commandstats``)."""
        with self.client() as client:
            stats: dict[str, Any] = client.info("commandstats")
        return {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()}


@contextlib.contextmanager
def redis_server(password: str | None = None) -> Iterator[RedisServer]:
    server = RedisServer(password=password).start()
    try:
        yield server
    finally:
        server.stop()


class AppProcess:
    """``python -m app <command> --port N`` with its output kept in a log file."""

    def __init__(self, command: str, env: Mapping[str, str], log_dir: Path, name: str,
                 args: Sequence[str] = (), port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "app", command, "--port", str(self.port), *args],
            cwd=ROOT, env=clean_environ(env), stdout=self._log, stderr=subprocess.STDOUT)
        self.client = httpx.Client(base_url=self.url, timeout=30, limits=KEEPALIVE)

    def wait_ready(self, path: str, timeout: float = 30) -> AppProcess:
        def ready() -> bool:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.log_path.name} exited {self.process.returncode}:\n{self.output()}")
            with contextlib.suppress(httpx.TransportError):
                return self.client.get(path).status_code == 200
            return False

        wait_until(ready, timeout, lambda: f"{self.log_path.name} to get ready:\n{self.output()}", 0.1)
        return self

    def output(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def terminate(self) -> None:
        self.process.send_signal(signal.SIGTERM)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.client.close()
        self._log.close()
        return self.process.returncode

    def rss_kib(self) -> int:
        """Resident memory of the process (``VmRSS``)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")


@contextlib.contextmanager
def simulator_process(log_dir: Path) -> Iterator[AppProcess]:
    sim = AppProcess("simulate", {}, log_dir, "simulator").wait_ready("/_sim/faults")
    try:
        yield sim
    finally:
        sim.stop()


def simulated_providers(simulator_url: str) -> dict[str, str]:
    """Settings that point every provider at a standalone simulator."""
    base = simulator_url + "/_sim"
    return {"SARVAM_BASE_URL": base + "/sarvam", "DEEPGRAM_BASE_URL": base + "/deepgram",
            "OPENAI_BASE_URL": base + "/openai/v1"}


@contextlib.contextmanager
def gateway_process(env: Mapping[str, str], log_dir: Path, name: str = "gateway",
                    args: Sequence[str] = (), port: int | None = None) -> Iterator[AppProcess]:
    gateway = AppProcess("serve", env, log_dir, name, args, port).wait_ready("/health/live")
    try:
        yield gateway
    finally:
        gateway.stop()
