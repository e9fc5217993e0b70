"""A real stack for the stack tests: the gateway and, for each way its metrics reach Prometheus 3,
a Prometheus, an Alertmanager and a webhook sink.

The two metric paths: ``scrape``, Prometheus scraping the gateway's ``/metrics``; ``otlp``, the
gateway exporting OTLP every second to the Collector (``otel-collector/config.yaml``), which
forwards to Prometheus's OTLP receiver, with the gateway job not scraped. Both are started by
:func:`app.stack.processes.running` from the programs built into ``.stack/bin/`` (a test fails,
never skips, when one is missing), with the committed configurations: Prometheus's and
Alertmanager's with short intervals, rule files rendered by ``app.monitoring.render`` with short
windows, and Alertmanager posting to the path's sink. The gateway's ``/metrics`` needs its admin
key (``METRICS_REQUIRE_AUTH``), which Prometheus reads from a credentials file, as the committed
config says.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from app.monitoring import render
from app.stack.processes import Options, free_port, running
from tests.gateway import Gateway, running_gateway
from tests.support import LOOP_LAG_WARNING, wait_until

REPO = Path(__file__).resolve().parents[2]
ALERTS = REPO / "alerts"

# The short-window variant the live stack runs with, for both engines. The window outlasts the
# fixture's traffic (collected by two paths) and the dashboard tests that run before the end-to-end
# ones, which expect the incident's alerts still firing: about 35 s on a quiet machine. At 45 s a
# clean-clone run on a busier one saw the success-rate alerts resolve before those tests looked.
WINDOW_SECONDS = 90
WINDOW, FOR, EVAL_INTERVAL, MIN_REQUESTS = f"{WINDOW_SECONDS}s", "4s", "1s", 5
POLL = 0.25
"""Seconds between two looks at Prometheus, Alertmanager or a replica while waiting for them."""
ADMIN_KEY = "stack-admin-key-for-tests"
GATEWAY_ENV = {
    "METRICS_REQUIRE_AUTH": "true",  # with ADMIN_KEY as ADMIN_API_KEY
    "ALERT_WINDOW": WINDOW,
    "ALERT_FOR": FOR,
    "ALERT_EVAL_INTERVAL": EVAL_INTERVAL,
    "ALERT_MIN_REQUESTS": str(MIN_REQUESTS),
    # Here too, so that the rules rendered from these settings carry it (tests/support.py says why).
    "ALERT_EVENT_LOOP_LAG_WARNING": LOOP_LAG_WARNING,
    "FALLBACKS_ENABLED": "false",
    # Active health checks every 2 s, so that the dashboards' health panels have checks to show.
    "HEALTH_CHECK_INTERVAL": "2",
    # 12 consecutive failures open the breaker; 2 TTS calls + 12 failures + 1 call rejected by the
    # open breaker spend the 15 calls of the minute, so the next calls are rate limited.
    "SARVAM_MAX_FAILURES": "12",
    "SARVAM_RATE_LIMIT": "15",
    # Failing chat calls all reach OpenAI (test_metric_paths counts them as attempted calls).
    "OPENAI_MAX_FAILURES": "100",
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


def alertmanager_config(sink_url: str) -> dict[str, Any]:
    """The committed Alertmanager config, posting to ``sink_url`` and grouping within a second."""
    config: dict[str, Any] = yaml.safe_load((ALERTS / "alertmanager" / "alertmanager.yml").read_text())
    config["route"].update(group_wait="1s", group_interval="1s")
    for receiver in config["receivers"]:
        for webhook in receiver.get("webhook_configs", []):
            webhook["url"] = webhook["url"].replace("http://webhook-sink:9095", sink_url)
    return config


PROMETHEUS_GLOBAL = {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"}
OTLP_ENV = {
    "OTEL_METRICS_EXPORTER": "otlp",
    "OTEL_METRIC_EXPORT_INTERVAL": "1000",  # ms: as often as Prometheus scrapes the other path
    "OTEL_TRACES_EXPORTER": "none",
    "OTEL_LOGS_EXPORTER": "none",
}
"""The gateway's OTLP export for the metric paths' tests: metrics only (traces and logs have tests
of their own), every second."""
EXPORTED = "gateway_event_loop_lag_seconds_count"
"""A series every scrape and every OTLP export carries: its sample count tells how many arrived."""


def render_rules(out: Path, gateway_env: Mapping[str, str]) -> Path:
    """The rule files, in ``out``, rendered from the ``ALERT_*`` settings the gateway runs with, so
    that both engines apply the same rules."""
    with pytest.MonkeyPatch.context() as environ:
        for name, value in gateway_env.items():
            if name.startswith("ALERT_"):
                environ.setenv(name, value)
        assert render.main(["render", "--from-env", "--out", str(out)]) == 0
    return out


def credentials_file(directory: Path) -> Path:
    """The file of the admin key Prometheus sends with each scrape."""
    path = directory / "admin_api_key"
    path.write_text(ADMIN_KEY + "\n")
    return path


def query(prometheus: str, expr: str) -> list[dict[str, Any]]:
    """An instant query; fails the test on any error, parse errors included."""
    response = httpx.post(f"{prometheus}/api/v1/query", data={"query": expr}, timeout=10)
    body = response.json()
    assert response.status_code == 200 and body["status"] == "success", f"{expr}: {body}"
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


@dataclass
class MetricPath:
    """One way to Prometheus: the Prometheus that gets the gateway's metrics that way, and the
    Alertmanager and webhook sink it notifies."""

    name: str
    prometheus: str
    alertmanager: str
    sink: Any
    otlp_http: str
    """The path's Collector (OTLP/HTTP)."""

    def query(self, expr: str) -> list[dict[str, Any]]:
        return query(self.prometheus, expr)


@dataclass
class Stack:
    gateway: Gateway
    paths: dict[str, MetricPath]
    rules_dir: Path
    """The short-window variant of both rule files, rendered for this stack."""

    @property
    def prometheus(self) -> str:
        """The scrape path's Prometheus."""
        return self.paths["scrape"].prometheus

    def query(self, expr: str, path: str = "scrape") -> list[dict[str, Any]]:
        return self.paths[path].query(expr)


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


@contextlib.contextmanager
def _metric_path(name: str, gateway: str, workdir: Path, options: Options) -> Iterator[MetricPath]:
    """The stack of one path, its Alertmanager posting to a sink of its own."""
    workdir.mkdir()
    with _sink_server() as sink, running(gateway, workdir, dataclasses.replace(
            options, alertmanager_config=alertmanager_config(sink.url))) as stack:
        endpoints = stack.endpoints
        yield MetricPath(name, endpoints.prometheus, endpoints.alertmanager, sink, endpoints.otlp_http)


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The gateway and both metric paths, once traffic has fired four alerts on sarvam translate in
    both Prometheus (shared by the end-to-end, dashboard and metric-path tests)."""
    tmp = tmp_path_factory.mktemp("stack")
    rules_dir = render_rules(tmp / "rules", GATEWAY_ENV)
    options = Options(rules=rules_dir / render.PROMETHEUS_RULES, prometheus_global=PROMETHEUS_GLOBAL)
    with contextlib.ExitStack() as cleanup:
        otlp = cleanup.enter_context(_metric_path("otlp", "", tmp / "otlp", dataclasses.replace(
            options, scrape_gateway=False)))
        # The exporters read the OTEL_* environment when the app is made: set only meanwhile.
        with pytest.MonkeyPatch.context() as environ:
            for name, value in {**OTLP_ENV, "OTEL_EXPORTER_OTLP_ENDPOINT": otlp.otlp_http}.items():
                environ.setenv(name, value)
            gateway = cleanup.enter_context(running_gateway({**GATEWAY_ENV, "ADMIN_API_KEY": ADMIN_KEY}))
        scrape = cleanup.enter_context(_metric_path("scrape", gateway.url, tmp / "scrape", dataclasses.replace(
            options, credentials=credentials_file(tmp))))
        live = Stack(gateway, {"scrape": scrape, "otlp": otlp}, rules_dir)
        _drive_traffic(live)
        yield live


def collected(path: MetricPath) -> float:
    """How many collections (scrapes or exports) of the gateway Prometheus holds."""
    samples = path.query(f"count_over_time({EXPORTED}[1h])")
    return float(samples[0]["value"][1]) if samples else 0.0


def await_collection(stack: Stack) -> None:
    """Wait until both Prometheus have one more collection of the gateway's metrics."""
    targets = {path.name: collected(path) + 1 for path in stack.paths.values()}
    wait_until(lambda: all(collected(p) >= targets[p.name] for p in stack.paths.values()), 15,
               "both paths' Prometheus to collect the gateway's metrics", POLL)


def _live_sessions(gateway: str) -> None:
    """A Deepgram live transcription and speech session through the gateway, from a process of
    their own: the SDKs' first use loads modules, which in this process would hold the GIL the
    gateway's event loop needs (and fire GatewayEventLoopLagHigh)."""
    script = ("import asyncio, sys\nfrom tests.streams import clients\n"
              "assert asyncio.run(clients.deepgram_transcripts(sys.argv[1], 1.0))\n"
              "assert asyncio.run(clients.deepgram_speech(sys.argv[1], 'namaste'))[0]\n")
    done = subprocess.run([sys.executable, "-c", script, gateway], cwd=REPO, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-3000:]


def _drive_traffic(stack: Stack) -> None:
    """Two TTS and chat calls (time to first byte, tokens) and live sessions (Deepgram listening
    and speaking: Sarvam's rate limit is the translate scenario's), then sarvam translate failing: 12
    failures open its breaker, one call meets the open breaker, two meet the rate limit. Calls
    are spread over collections so that Prometheus sees the counters grow."""
    gateway = stack.gateway
    await_collection(stack)
    for _ in range(2):
        tts = gateway.client.post("/v1/tts", json={"text": "namaste", "language_code": "hi-IN"})
        assert tts.status_code == 200, tts.text
        chat = gateway.client.post("/v1/chat/completions", json={
            "model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}]})
        assert chat.status_code == 200, chat.text
        _live_sessions(gateway.url)
        await_collection(stack)
    gateway.fault("sarvam", operation="translate", error_rate=1.0)
    for n in range(12):
        assert gateway.translate().status_code == 502
        if n % 4 == 3:
            await_collection(stack)
    assert gateway.translate().status_code == 503
    for _ in range(2):
        await_collection(stack)
        assert gateway.translate().status_code == 429
    firing = 'ALERTS{alertstate="firing"}'
    for path in stack.paths.values():
        wait_until(lambda p=path: len(p.query(firing)) >= 4, 30,  # type: ignore[misc]
                   f"four alerts to fire in the {path.name} path's Prometheus", POLL)
