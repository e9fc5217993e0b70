"""The fleet: three gateway processes on one real Redis, scraped by a real Prometheus, delivering to
a real Alertmanager; and ``serve --workers``.

An incident split across replicas (24 chat calls, half failing, 8 per replica: fewer than
``ALERT_MIN_REQUESTS`` in each) fires in Prometheus, which sums over replicas, and in every
replica's ``/health/alerts``, whose metrics and trends are the fleet's totals. Every replica sends
its alerts to Alertmanager, which keeps one copy and notifies once. Redis stopped and restarted
empty under traffic: each replica says its view is local meanwhile, and once Redis is back the
fleet's totals count every call, those recorded while it was away included.
"""

from __future__ import annotations

import contextlib
import itertools
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.monitoring import render
from app.stack.processes import Options, free_port, running
from tests.hardening.servers import (
    AppProcess,
    RedisServer,
    clean_environ,
    gateway_process,
    redis_server,
    simulated_providers,
    simulator_process,
)
from tests.support import wait_until

from .conftest import (
    ADMIN_KEY,
    GATEWAY_ENV,
    POLL,
    PROMETHEUS_GLOBAL,
    _sink_server,
    alertmanager_config,
    credentials_file,
    query,
    render_rules,
)

MIN_REQUESTS = 10
ENV = {**GATEWAY_ENV, "ADMIN_API_KEY": ADMIN_KEY, "ALERT_MIN_REQUESTS": str(MIN_REQUESTS),
       "SARVAM_RATE_LIMIT": "100000", "LOG_LEVEL": "warning"}
"""The replicas' settings but for Redis, the simulator and Alertmanager."""
CHAT = {"messages": [{"role": "user", "content": "hello"}]}
TRANSLATE = {"input": "hello", "source_language_code": "en-IN", "target_language_code": "hi-IN"}
ALERT = "ProviderSuccessRateLow"
LOOP_LAG = "GatewayEventLoopLagHigh"
"""Left out of the comparison: its ``instance`` is Prometheus's scrape address there, the host name in-app."""


@dataclass
class Fleet:
    redis: RedisServer
    simulator: AppProcess
    replicas: list[AppProcess]
    prometheus: str
    alertmanager: str
    sink: Any

    def query(self, expr: str) -> list[dict[str, Any]]:
        return query(self.prometheus, expr)

    def fault(self, **fields: Any) -> None:
        self.simulator.client.put("/_sim/faults", json=fields).raise_for_status()

    def clear(self) -> None:
        self.simulator.client.delete("/_sim/faults").raise_for_status()


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    tmp = tmp_path_factory.mktemp("fleet")
    ports = [free_port() for _ in range(3)]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    with contextlib.ExitStack() as stack:
        sink = stack.enter_context(_sink_server())
        redis = stack.enter_context(redis_server())
        simulator = stack.enter_context(simulator_process(tmp))
        # Prometheus scrapes every replica; only the replicas deliver to Alertmanager here, so
        # that its deduplication of their copies is what the test sees.
        options = Options(rules=render_rules(tmp / "rules", ENV) / render.PROMETHEUS_RULES,
                          prometheus_global=PROMETHEUS_GLOBAL, replicas=tuple(urls[1:]), alerting=False,
                          credentials=credentials_file(tmp), alertmanager_config=alertmanager_config(sink.url))
        (tmp / "stack").mkdir()
        endpoints = stack.enter_context(running(urls[0], tmp / "stack", options)).endpoints
        env = {**ENV, **simulated_providers(simulator.url), "STATE_REDIS_URL": redis.url,
               "ALERTMANAGER_URL": endpoints.alertmanager}
        replicas = [stack.enter_context(gateway_process(env, tmp, f"replica-{n}", port=port))
                    for n, port in enumerate(ports)]
        found = Fleet(redis, simulator, replicas, endpoints.prometheus, endpoints.alertmanager, sink)
        wait_until(lambda: len(found.query('up{job="gateway"} == 1')) == 3, 30,
                   "Prometheus to scrape 3 replicas", POLL)
        yield found


def get(replica: AppProcess, path: str, **params: str) -> dict[str, Any]:
    response = replica.client.get(path, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def calls(fleet: Fleet, count: int, *, failing: bool) -> None:
    """``count`` chat calls spread over the replicas in turn, failing (502) or not."""
    if failing:
        fleet.fault(provider="openai", operation="chat", error_rate=1.0, status_code=500)
    try:
        for replica in itertools.islice(itertools.cycle(fleet.replicas), count):
            response = replica.client.post("/v1/chat/completions", json=CHAT)
            assert response.status_code == (502 if failing else 200), response.text
    finally:
        fleet.clear()


def in_app_firing(replica: AppProcess) -> set[tuple[str, str, str | None, str | None]]:
    return {(a["name"], a["severity"], a["provider"], a["operation"])
            for a in get(replica, "/health/alerts")["alerts"] if a["state"] == "firing" and a["name"] != LOOP_LAG}


def prometheus_firing(fleet: Fleet) -> set[tuple[str, str, str | None, str | None]]:
    return {(s["metric"]["alertname"], s["metric"]["severity"], s["metric"].get("provider"),
             s["metric"].get("operation"))
            for s in fleet.query('ALERTS{alertstate="firing"}') if s["metric"]["alertname"] != LOOP_LAG}


def test_an_incident_split_across_replicas_fires_in_every_replica_as_in_prometheus(fleet: Fleet) -> None:
    replicas = fleet.replicas
    for replica in replicas:
        assert get(replica, "/health/alerts")["view"] == "fleet"
    # One failed and one good call per replica first, so that each outcome's series exists when
    # the incident starts (Prometheus's increase() cannot see a series' first value).
    calls(fleet, 3, failing=True)
    calls(fleet, 3, failing=False)
    series = 'provider_client_request_duration_seconds_count{provider="openai", operation="chat"}'
    wait_until(lambda: len(fleet.query(series)) == 6, 15, "Prometheus to scrape both outcomes of 3 replicas",
               POLL)
    calls(fleet, 9, failing=True)
    calls(fleet, 9, failing=False)
    # Half the calls failing also burns the 0.5% error budget 100 times over: the page and the ticket.
    expected = {(name, severity, "openai", "chat") for name in (ALERT, "ProviderErrorBudgetBurn")
                for severity in ("warning", "critical")}
    wait_until(lambda: prometheus_firing(fleet) == expected, 30,
               lambda: f"Prometheus to fire {expected}; got {prometheus_firing(fleet)}", POLL)
    for replica in replicas:
        # Each replica saw 8 calls, under ALERT_MIN_REQUESTS: only the fleet's numbers fire.
        wait_until(lambda r=replica: in_app_firing(r) == prometheus_firing(fleet), 15,  # type: ignore[misc]
                   f"{replica.log_path.name}'s /health/alerts to equal Prometheus's firing set", POLL)
        metrics = get(replica, "/health/metrics")
        chat = metrics["services"]["openai.chat"]
        assert (chat["requests"], chat["successes"], chat["failures"]) == (24, 12, 12)
        assert chat["errors"] == {"upstream_5xx": 12} and chat["success_rate"] == 0.5
        assert metrics["view"] == "fleet" and metrics["fleet"]["view"] == "fleet"
        reported = metrics["fleet"]["replicas"]
        assert len(reported) == 3 and metrics["fleet"]["replica"] == reported[0]["replica"]
        assert sorted(r["requests"]["openai.chat"] for r in reported) == [8, 8, 8]
        assert all(r["age_seconds"] < 5 for r in reported)
        page = replica.client.get("/status", headers={"authorization": f"Bearer {ADMIN_KEY}"}).text
        assert "Fleet view: the numbers and alerts of 3 replicas" in page


def test_trends_are_the_fleets(fleet: Fleet) -> None:
    seen = []
    for replica in fleet.replicas:
        trends = get(replica, "/health/trends/openai.chat", window="2m", step="10s")
        assert trends["view"] == "fleet"
        with_calls = [p for p in trends["points"] if p["requests"]]
        assert sum(p["requests"] for p in with_calls) == 24
        rate = sum(p["success_rate"] * p["requests"] for p in with_calls) / 24
        assert abs(rate - 0.5) < 1e-9
        seen.append([(p["timestamp"], p["requests"]) for p in with_calls])
    assert seen[0] == seen[1] == seen[2]


def test_alertmanager_keeps_one_copy_of_the_replicas_alerts_and_notifies_once(fleet: Fleet) -> None:
    def delivered() -> list[dict[str, Any]]:
        return [alert for n in fleet.sink.received() for alert in n["payload"]["alerts"]
                if alert["labels"]["alertname"] == ALERT and alert["status"] == "firing"]

    wait_until(delivered, 20, f"{ALERT} to reach the webhook", POLL)
    time.sleep(3)  # several group intervals (1 s): any duplicate would have been notified by now
    # The critical alert inhibits the warning; three replicas sent both, once each at least.
    assert [a["labels"]["severity"] for a in delivered()] == ["critical"]
    response = httpx.get(f"{fleet.alertmanager}/api/v2/alerts", params={"filter": f'alertname="{ALERT}"'})
    held = response.json()
    assert sorted(a["labels"]["severity"] for a in held) == ["critical", "warning"]
    # It held one of each because it deduplicated copies: every replica sent both alerts.
    metrics = httpx.get(f"{fleet.alertmanager}/metrics").text
    received = sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                   if line.startswith("alertmanager_alerts_received_total") and 'status="firing"' in line)
    assert received >= 2 * len(fleet.replicas), metrics
    for replica in fleet.replicas:
        assert "alert.delivery_failed" not in replica.output()


def test_redis_stopped_and_restarted_empty_under_traffic_loses_nothing(fleet: Fleet) -> None:
    replicas = fleet.replicas
    served: list[int] = []
    stop = threading.Event()

    def traffic(replica: AppProcess) -> None:
        with httpx.Client(base_url=replica.url, timeout=30) as client:
            while not stop.is_set():
                served.append(client.post("/v1/translate", json=TRANSLATE).status_code)
                time.sleep(0.02)

    before = get(replicas[0], "/health/metrics", window="10m")["services"]["sarvam.translate"]["requests"]
    threads = [threading.Thread(target=traffic, args=(r,)) for r in replicas]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1.5)
        fleet.redis.stop()
        wait_until(lambda: all(get(r, "/health/metrics")["view"] == "local" for r in replicas), 10,
                   "every replica to say its view is local", POLL)
        for replica in replicas:
            body = get(replica, "/health/metrics")
            assert "Redis" in body["fleet"]["reason"] and len(body["fleet"]["replicas"]) == 1
            for path in ("/health/", "/health/services", "/health/alerts", "/health/status"):
                assert get(replica, path)["view"] == "local", path
        wait_until(lambda: all(("GatewayStateBackendDown", "warning", None, None) in in_app_firing(r)
                               for r in replicas), 15, "GatewayStateBackendDown to fire in every replica",
                   POLL)
        fleet.redis.start()  # on the same port, without any of the data
        wait_until(lambda: all(get(r, "/health/metrics")["view"] == "fleet" for r in replicas), 15,
                   "every replica to merge again", POLL)
        time.sleep(1)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert set(served) == {200} and len(served) > 30
    total = before + len(served)

    def counted() -> list[int]:
        return [get(r, "/health/metrics", window="10m")["services"]["sarvam.translate"]["requests"]
                for r in replicas]

    wait_until(lambda: counted() == [total] * 3, 10, f"every replica to count all {total} calls", POLL)
    incident = get(replicas[1], "/health/metrics", window="10m")["services"]["openai.chat"]
    assert incident["requests"] == 24  # rebuilt in the empty Redis from the replicas' own rings


def serve(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "app", "serve", *args], capture_output=True, text=True,
                          timeout=60, env=clean_environ(env), check=False)


def test_workers_without_redis_are_refused_saying_why() -> None:
    result = serve(["--workers", "2", "--port", str(free_port())], {})
    assert result.returncode == 2
    message = result.stderr
    assert "--workers 2 needs STATE_REDIS_URL" in message
    assert "rate limits" in message and "circuit breakers" in message and "in-app view" in message


def test_workers_with_redis_are_one_fleet(tmp_path: Path) -> None:
    with redis_server() as redis, gateway_process({"STATE_REDIS_URL": redis.url, "SARVAM_RATE_LIMIT": "1000"},
                                                  tmp_path, "workers", ["--workers", "2"]) as gateway:
        def replicas() -> set[str]:
            # A new connection each time: the kernel hands it to either worker.
            body = httpx.get(f"{gateway.url}/health/metrics", timeout=10).json()
            return {r["replica"] for r in body["fleet"]["replicas"]} if body["view"] == "fleet" else set()

        wait_until(lambda: len(replicas()) == 2, 20, "both workers to report to the fleet", POLL)
        for _ in range(20):
            assert httpx.post(f"{gateway.url}/v1/translate", json=TRANSLATE, timeout=10).status_code == 200

        def totals() -> set[int]:
            return {httpx.get(f"{gateway.url}/health/metrics", timeout=10).json()["services"]["sarvam.translate"]
                    ["requests"] for _ in range(8)}

        wait_until(lambda: totals() == {20}, 10, "every worker to show the 20 calls of both", POLL)
        assert gateway.stop() == 0
