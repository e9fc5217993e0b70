"""The built stack run without a container engine: the Collector, Jaeger, Prometheus 3 and
Alertmanager on free loopback ports, each with its committed configuration.

The Collector and Jaeger read their committed files as they are, with endpoints from
``${env:NAME:-default}`` set to loopback ports. Prometheus and Alertmanager have no such
substitution, so their committed files are copied with the compose host names (``gateway:8000``,
``alertmanager:9093`` ...) replaced and, for tests, their intervals shortened. The Collector's log
records go to ``Options.logs_url`` or, by default, to a :mod:`~app.stack.logsink` in this process.
"""

from __future__ import annotations

import contextlib
import functools
import os
import random
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from . import logsink
from .binaries import CHECKOUT, binary

COLLECTOR_CONFIG = CHECKOUT / "otel-collector" / "config.yaml"
JAEGER_CONFIG = CHECKOUT / "stack" / "jaeger" / "config.yaml"
PROMETHEUS_CONFIG = CHECKOUT / "alerts" / "prometheus" / "prometheus.yml"
PROMETHEUS_RULES = CHECKOUT / "alerts" / "prometheus" / "rules.yml"
ALERTMANAGER_CONFIG = CHECKOUT / "alerts" / "alertmanager" / "alertmanager.yml"
READY_TIMEOUT = 60.0
PORT_ATTEMPTS = 3
LOG_SINK_FILE = "logs.jsonl"


class StackError(Exception):
    """A stack program exited or never became ready (its log's tail is in the message)."""


class PortTaken(StackError):
    """A program exited because another process bound one of its free ports first."""


LOWEST_PORT = 10_000
_handed_out: set[int] = set()


@functools.cache
def _candidate_ports() -> tuple[int, ...]:
    """Ports from :data:`LOWEST_PORT` up, outside the kernel's range for outgoing connections and
    port-0 binds (Linux's default if it cannot be read)."""
    try:
        low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        low, high = 32768, 60999
    return tuple(port for port in range(LOWEST_PORT, 65536) if not low <= port <= high)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now, from outside the kernel's
    ephemeral range: a port-0 bind or an outgoing connection (a client's, or another server's) never
    takes it before the server meant for it binds it, as one did to a port from that range in CI.
    Not handed out twice by this process."""
    candidates = _candidate_ports()
    for _ in candidates:
        port = random.choice(candidates)
        if port in _handed_out:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise StackError("no free loopback port outside the ephemeral range")


class Daemon:
    """A stack program in a process of its own, its output kept in ``log``."""

    def __init__(self, name: str, args: list[str], url: str, log: Path, ready_path: str,
                 env: Mapping[str, str] | None = None) -> None:
        self.name, self.url, self.log, self.ready_path = name, url, log, ready_path
        self.args, self.env = args, {**os.environ, **(env or {})}
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(self.args, stdout=out, stderr=subprocess.STDOUT, env=self.env)

    def ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            tail = self.log.read_text()[-3000:]
            error = PortTaken if "address already in use" in tail else StackError
            raise error(f"{self.name} exited with {self.process.returncode}:\n{tail}")
        try:
            with urllib.request.urlopen(self.url + self.ready_path, timeout=1) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while not self.ready():
            if time.monotonic() > deadline:
                raise StackError(f"{self.name} not ready after {timeout:.0f} s:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@dataclass(frozen=True)
class Endpoints:
    """Base URLs of the running stack (``stack up --json`` prints these keys)."""

    otlp_http: str
    otlp_grpc: str
    jaeger: str
    prometheus: str
    alertmanager: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass
class Options:
    """What a caller may change; the defaults are what ``stack up`` runs."""

    rules: Path = PROMETHEUS_RULES
    """The Prometheus rule file loaded."""
    prometheus_global: dict[str, str] = field(default_factory=dict)
    """Overrides of the config's ``global`` section (tests shorten the intervals)."""
    scrape_gateway: bool = True
    """False leaves the gateway job out, for a Prometheus fed only over OTLP."""
    replicas: tuple[str, ...] = ()
    """Base URLs of further gateway replicas the gateway job scrapes besides ``gateway``."""
    alerting: bool = True
    """False leaves Prometheus without Alertmanager, for replicas that deliver their own alerts."""
    credentials: Path | None = None
    """The file of the gateway's admin key Prometheus sends (default: the committed placeholder)."""
    alertmanager_config: dict[str, Any] | None = None
    """The Alertmanager config to run (default: the committed one)."""
    logs_url: str = ""
    """An OTLP/HTTP logs receiver for the Collector's logs pipeline (Loki's ``/otlp``, say); empty:
    a :class:`~app.stack.logsink.LogSink` writing the records to ``logs.jsonl`` in the stack's directory."""
    collector_env: dict[str, str] = field(default_factory=dict)


@dataclass
class Running:
    endpoints: Endpoints
    daemons: dict[str, Daemon]
    logs: Path | None
    """The file of JSON lines the log sink writes (None when the logs go to ``Options.logs_url``)."""


def prometheus_config(gateway: str, hosts: Mapping[str, str], options: Options) -> dict[str, Any]:
    """The committed Prometheus config with ``hosts`` for the compose host names."""
    config: dict[str, Any] = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    config["global"].update(options.prometheus_global)
    config["rule_files"] = [str(options.rules)]
    if not options.alerting:
        del config["alerting"]
    for alertmanagers in config.get("alerting", {}).get("alertmanagers", []):
        for static in alertmanagers["static_configs"]:
            static["targets"] = [hosts[t] for t in static["targets"]]
    jobs = []
    for job in config["scrape_configs"]:
        for static in job["static_configs"]:
            static["targets"] = [hosts[t] for t in static["targets"]]
        if job["job_name"] == "gateway":
            if not options.scrape_gateway:
                continue
            job["scheme"] = urlsplit(gateway).scheme or "http"
            job["static_configs"][0]["targets"] += [urlsplit(url).netloc for url in options.replicas]
        if "authorization" in job:
            credentials = options.credentials or PROMETHEUS_CONFIG.parent / job["authorization"]["credentials_file"]
            job["authorization"]["credentials_file"] = str(credentials)
        jobs.append(job)
    config["scrape_configs"] = jobs
    return config


def alertmanager_command(config: Path, storage: Path, listen: str) -> list[str]:
    """Alertmanager alone (no cluster) on ``listen``, logging warnings and errors only."""
    return [str(binary("alertmanager")), f"--config.file={config}", f"--storage.path={storage}",
            f"--web.listen-address={listen}", "--cluster.listen-address=", "--log.level=warn"]


@contextlib.contextmanager
def running(gateway: str, workdir: Path, options: Options | None = None) -> Iterator[Running]:
    """Start the four programs in ``workdir`` (configs, data, one log each); stop them on exit.

    A free port may be taken by another process before the program meant for it binds it: then
    everything starts again on new ports, up to ``PORT_ATTEMPTS`` times."""
    for attempt in range(1, PORT_ATTEMPTS + 1):
        with contextlib.ExitStack() as cleanup:
            try:
                stack = cleanup.enter_context(_started(gateway, workdir, options or Options()))
            except PortTaken:
                if attempt == PORT_ATTEMPTS:
                    raise
                continue
            yield stack
            return


@contextlib.contextmanager
def _started(gateway: str, workdir: Path, options: Options) -> Iterator[Running]:
    ports = {name: free_port() for name in (
        "otlp_grpc", "otlp_http", "collector_health", "collector_metrics", "jaeger_grpc", "jaeger_http",
        "jaeger_query", "jaeger_query_grpc", "jaeger_health", "jaeger_metrics", "prometheus", "alertmanager")}
    loopback = {name: f"127.0.0.1:{port}" for name, port in ports.items()}
    endpoints = Endpoints(
        otlp_http=f"http://{loopback['otlp_http']}", otlp_grpc=f"http://{loopback['otlp_grpc']}",
        jaeger=f"http://{loopback['jaeger_query']}", prometheus=f"http://{loopback['prometheus']}",
        alertmanager=f"http://{loopback['alertmanager']}")
    hosts = {"gateway:8000": urlsplit(gateway).netloc, "localhost:9090": loopback["prometheus"],
             "alertmanager:9093": loopback["alertmanager"]}
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(prometheus_config(gateway, hosts, options)))
    alertmanager_config = options.alertmanager_config or yaml.safe_load(ALERTMANAGER_CONFIG.read_text())
    (workdir / "alertmanager.yml").write_text(yaml.safe_dump(alertmanager_config))
    with contextlib.ExitStack() as cleanup:
        daemons: dict[str, Daemon] = {}
        logs_url, logs = options.logs_url, None
        if not logs_url:
            logs = workdir / LOG_SINK_FILE
            logs_url = cleanup.enter_context(logsink.serving(logs)).url

        def start(name: str, args: list[str], url: str, ready: str, env: Mapping[str, str] | None = None) -> None:
            daemons[name] = Daemon(name, args, url, workdir / f"{name}.log", ready, env)
            cleanup.callback(daemons[name].stop)

        start("alertmanager", alertmanager_command(workdir / "alertmanager.yml", workdir / "alertmanager-data",
                                                   loopback["alertmanager"]), endpoints.alertmanager, "/-/ready")
        start("prometheus", [
            str(binary("prometheus")), f"--config.file={workdir / 'prometheus.yml'}",
            f"--storage.tsdb.path={workdir / 'prometheus-data'}", f"--web.listen-address={loopback['prometheus']}",
            "--web.enable-otlp-receiver", "--log.level=warn"], endpoints.prometheus, "/-/ready")
        start("jaeger", [str(binary("jaeger")), f"--config={JAEGER_CONFIG}"], endpoints.jaeger, "/api/services", {
            "JAEGER_OTLP_GRPC_ENDPOINT": loopback["jaeger_grpc"], "JAEGER_OTLP_HTTP_ENDPOINT": loopback["jaeger_http"],
            "JAEGER_QUERY_HTTP_ENDPOINT": loopback["jaeger_query"],
            "JAEGER_QUERY_GRPC_ENDPOINT": loopback["jaeger_query_grpc"],
            "JAEGER_HEALTH_ENDPOINT": loopback["jaeger_health"], "JAEGER_METRICS_HOST": "127.0.0.1",
            "JAEGER_METRICS_PORT": str(ports["jaeger_metrics"])})
        collector_health = f"http://{loopback['collector_health']}"
        start("otelcol", [str(binary("otelcol")), f"--config={COLLECTOR_CONFIG}"], collector_health, "/", {
            "OTELCOL_OTLP_GRPC_ENDPOINT": loopback["otlp_grpc"], "OTELCOL_OTLP_HTTP_ENDPOINT": loopback["otlp_http"],
            "OTELCOL_HEALTH_ENDPOINT": loopback["collector_health"], "OTELCOL_METRICS_HOST": "127.0.0.1",
            "OTELCOL_METRICS_PORT": str(ports["collector_metrics"]),
            "JAEGER_OTLP_GRPC_ENDPOINT": loopback["jaeger_grpc"],
            "PROMETHEUS_OTLP_METRICS_URL": f"{endpoints.prometheus}/api/v1/otlp/v1/metrics",
            "LOGS_OTLP_HTTP_URL": logs_url,
            **options.collector_env})
        for daemon in daemons.values():
            daemon.wait_ready()
        yield Running(endpoints, daemons, logs)
