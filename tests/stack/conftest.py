"""A real stack for the stack tests: the gateway, Prometheus, Alertmanager and a webhook sink.

Prometheus 3 and Alertmanager are the stack's programs built from pinned Go modules
(``scripts/build-stack.sh`` into ``.stack/bin/``); a test that needs one fails when it is missing, it
never skips.
Their configuration is the committed one (``alerts/prometheus/prometheus.yml``,
``alerts/alertmanager/alertmanager.yml``) with the compose host names pointed at loopback ports,
short intervals, and rule files rendered by ``app.monitoring.render`` with short windows. The
gateway's ``/metrics`` needs its admin key (``METRICS_REQUIRE_AUTH``), which Prometheus reads
from a credentials file, as the committed config says.
"""

from __future__ import annotations

import contextlib
import importlib.util
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from app.monitoring import render
from tests.gateway import Gateway, running_gateway
from tests.support import LOOP_LAG_WARNING, free_port, stack_binary, wait_until

REPO = Path(__file__).resolve().parents[2]
ALERTS = REPO / "alerts"

# The short-window variant the live stack runs with, for both engines.
WINDOW, FOR, EVAL_INTERVAL, MIN_REQUESTS = "30s", "4s", "1s", 5
POLL = 0.25
"""Seconds between two looks at Prometheus, Alertmanager or a replica while waiting for them."""
ADMIN_KEY = "stack-admin-key-for-tests"
GATEWAY_ENV = {
    "METRICS_REQUIRE_AUTH": "true",  # with ADMIN_KEY as ADMIN_API_KEY
    "ALERT_WINDOW": WINDOW,
    "ALERT_FOR": FOR,
    "ALERT_EVAL_INTERVAL": EVAL_INTERVAL,
    "ALERT_MIN_REQUESTS": str(MIN_REQUESTS),
    "FALLBACKS_ENABLED": "false",
    # Active health checks every 2 s, so that the dashboards' health panels have checks to show.
    "HEALTH_CHECK_INTERVAL": "2",
    # 12 consecutive failures open the breaker; 2 TTS calls + 12 failures + 1 call rejected by the
    # open breaker spend the 15 calls of the minute, so the next calls are rate limited.
    "SARVAM_MAX_FAILURES": "12",
    "SARVAM_RATE_LIMIT": "15",
}


def run(*args: str | Path, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], check=False, cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def load_webhook_sink() -> Any:
    """``alerts/alertmanager/webhook_sink.py``, the sink compose.yaml runs, as a module."""
    spec = importlib.util.spec_from_file_location("webhook_sink", ALERTS / "alertmanager" / "webhook_sink.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Daemon:
    """A server binary run for the tests, with its output kept in a log file."""

    def __init__(self, name: str, args: list[str], url: str, log: Path) -> None:
        self.name, self.url, self.log = name, url, log
        with log.open("wb") as out:
            self.process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)

    def wait_ready(self, path: str = "/-/ready", timeout: float = 30) -> None:
        def ready() -> bool:
            if self.process.poll() is not None:
                log = self.log.read_text()[-3000:]
                pytest.fail(f"{self.name} exited with {self.process.returncode}:\n{log}")
            try:
                return httpx.get(self.url + path, timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(ready, timeout, f"{self.name} to be ready", POLL)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def prometheus_config(rules: Path, hosts: dict[str, str], credentials: Path) -> dict[str, Any]:
    """The committed Prometheus config with 1 s intervals, ``rules`` as the rule file, the
    compose host names (``gateway:8000`` ...) replaced by ``hosts`` and ``credentials`` as the
    file of every job that sends one."""
    config: dict[str, Any] = yaml.safe_load((ALERTS / "prometheus" / "prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s", scrape_timeout="1s")
    config["rule_files"] = [str(rules)]
    for alertmanagers in config["alerting"]["alertmanagers"]:
        for static in alertmanagers["static_configs"]:
            static["targets"] = [hosts[t] for t in static["targets"]]
    for job in config["scrape_configs"]:
        for static in job["static_configs"]:
            static["targets"] = [hosts[t] for t in static["targets"]]
        if "authorization" in job:
            job["authorization"]["credentials_file"] = str(credentials)
    return config


def alertmanager_config(sink_url: str) -> dict[str, Any]:
    """The committed Alertmanager config, posting to ``sink_url`` and grouping within a second."""
    config: dict[str, Any] = yaml.safe_load((ALERTS / "alertmanager" / "alertmanager.yml").read_text())
    config["route"].update(group_wait="1s", group_interval="1s")
    for receiver in config["receivers"]:
        for webhook in receiver.get("webhook_configs", []):
            webhook["url"] = webhook["url"].replace("http://webhook-sink:9095", sink_url)
    return config


@dataclass
class Stack:
    gateway: Gateway
    prometheus: str
    alertmanager: str
    sink: Any
    rules_dir: Path
    """The short-window variant of both rule files, rendered for this stack."""

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query; fails the test on any error, parse errors included."""
        response = httpx.post(f"{self.prometheus}/api/v1/query", data={"query": expr}, timeout=10)
        body = response.json()
        assert response.status_code == 200 and body["status"] == "success", f"{expr}: {body}"
        result: list[dict[str, Any]] = body["data"]["result"]
        return result


@contextlib.contextmanager
def _sink_server() -> Iterator[Any]:
    sink = load_webhook_sink().WebhookSink("127.0.0.1", free_port(), echo=False)
    thread = threading.Thread(target=sink.serve_forever, daemon=True)
    thread.start()
    try:
        yield sink
    finally:
        sink.shutdown()
        sink.server_close()


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Gateway, Alertmanager, sink and Prometheus, once traffic has fired four alerts on sarvam
    translate in Prometheus (shared by the end-to-end and the dashboard tests)."""
    prometheus_bin = stack_binary("prometheus")
    alertmanager_bin = stack_binary("alertmanager")
    tmp = tmp_path_factory.mktemp("stack")
    rules_dir = tmp / "rules"
    assert render.main(["render", "--out", str(rules_dir), "--window", WINDOW, "--for", FOR,
                        "--eval-interval", EVAL_INTERVAL, "--min-requests", str(MIN_REQUESTS),
                        "--event-loop-lag-warning", LOOP_LAG_WARNING]) == 0
    daemons: list[Daemon] = []
    with contextlib.ExitStack() as cleanup:
        sink = cleanup.enter_context(_sink_server())
        am_port, prom_port = free_port(), free_port()
        (tmp / "alertmanager.yml").write_text(yaml.safe_dump(alertmanager_config(sink.url)))
        alertmanager = Daemon("alertmanager", [
            alertmanager_bin, f"--config.file={tmp / 'alertmanager.yml'}",
            f"--storage.path={tmp / 'am-data'}", f"--web.listen-address=127.0.0.1:{am_port}",
            "--cluster.listen-address=", "--log.level=warn",
        ], f"http://127.0.0.1:{am_port}", tmp / "alertmanager.log")
        daemons.append(alertmanager)
        cleanup.callback(alertmanager.stop)
        gateway = cleanup.enter_context(running_gateway({**GATEWAY_ENV, "ADMIN_API_KEY": ADMIN_KEY}))
        hosts = {"gateway:8000": gateway.url.removeprefix("http://"),
                 "localhost:9090": f"127.0.0.1:{prom_port}", "alertmanager:9093": f"127.0.0.1:{am_port}"}
        credentials = tmp / "admin_api_key"
        credentials.write_text(ADMIN_KEY + "\n")
        config = prometheus_config(rules_dir / render.PROMETHEUS_RULES, hosts, credentials)
        (tmp / "prometheus.yml").write_text(yaml.safe_dump(config))
        prometheus = Daemon("prometheus", [
            prometheus_bin, f"--config.file={tmp / 'prometheus.yml'}", f"--storage.tsdb.path={tmp / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prom_port}", "--log.level=warn",
        ], f"http://127.0.0.1:{prom_port}", tmp / "prometheus.log")
        daemons.append(prometheus)
        cleanup.callback(prometheus.stop)
        for daemon in daemons:
            daemon.wait_ready()
        live = Stack(gateway, prometheus.url, alertmanager.url, sink, rules_dir)
        _drive_traffic(live)
        yield live


def _scraped(stack: Stack) -> None:
    """Wait until Prometheus has scraped the gateway once more."""
    def scrapes() -> float:
        samples = stack.query('sum_over_time(up{job="gateway"}[1h])')
        return float(samples[0]["value"][1]) if samples else 0.0

    target = scrapes() + 1
    wait_until(lambda: scrapes() >= target, 15, "Prometheus to scrape the gateway", POLL)


def _drive_traffic(stack: Stack) -> None:
    """Two TTS and chat calls (time to first byte, tokens), then sarvam translate failing: 12
    failures open its breaker, one call meets the open breaker, two meet the rate limit. Calls
    are spread over scrapes so that Prometheus sees the counters grow."""
    gateway = stack.gateway
    _scraped(stack)
    for _ in range(2):
        tts = gateway.client.post("/v1/tts", json={"text": "namaste", "language_code": "hi-IN"})
        assert tts.status_code == 200, tts.text
        chat = gateway.client.post("/v1/chat/completions", json={
            "model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}]})
        assert chat.status_code == 200, chat.text
        _scraped(stack)
    gateway.fault("sarvam", operation="translate", error_rate=1.0)
    for n in range(12):
        assert gateway.translate().status_code == 502
        if n % 4 == 3:
            _scraped(stack)
    assert gateway.translate().status_code == 503
    for _ in range(2):
        _scraped(stack)
        assert gateway.translate().status_code == 429
    firing = 'ALERTS{alertstate="firing"}'
    wait_until(lambda: len(stack.query(firing)) >= 4, 30, "four alerts to fire in Prometheus", POLL)
