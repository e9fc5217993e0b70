"""Enforced client budgets across two gateway processes on one real Redis: the fleet's spend is
shared, so that once a client's budget is spent both replicas refuse it (429 ``budget_exceeded``,
before any upstream I/O, counted like every refusal), and together they overspend it by at most
one call in flight per replica, however many calls each serves at once."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support import wait_until

from .servers import AppProcess, gateway_process, redis_server, simulated_providers, simulator_process

pytestmark = pytest.mark.stack

TEXT = "x" * 1000
CALL_USD = 1000 * 20 / 10_000 / 89.44  # one translate of TEXT at Sarvam's ₹20 per 10K characters
BUDGET_USD = 0.1  # 4.47 calls


def replicas_env(tmp_path: Path, redis_url: str, simulator_url: str) -> dict[str, str]:
    budgets = tmp_path / "budgets.yaml"
    budgets.write_text(f"team-a: {{daily_usd: {BUDGET_USD}, enforce: true}}\n")
    return {**simulated_providers(simulator_url), "STATE_REDIS_URL": redis_url, "FALLBACKS_ENABLED": "false",
            "SARVAM_RATE_LIMIT": "10000", "GATEWAY_API_KEYS": "team-a:key-a,team-b:key-b",
            "CLIENT_BUDGETS_FILE": str(budgets)}


@pytest.fixture
def two_replicas(tmp_path: Path) -> Iterator[tuple[AppProcess, AppProcess, AppProcess]]:
    with redis_server() as redis, simulator_process(tmp_path) as sim:
        env = replicas_env(tmp_path, redis.url, sim.url)
        with gateway_process(env, tmp_path, "replica-a") as a, gateway_process(env, tmp_path, "replica-b") as b:
            for gw in (a, b):  # the start-up health checks reach the simulator (Sarvam's is a translate)
                wait_until(lambda gw=gw: all(p["last_active_check"] is not None for p in  # type: ignore[misc]
                                             gw.client.get("/health/services").json()["providers"].values()),
                           15, "the first active health checks", interval=0.1)
            sim.client.put("/_sim/faults", json={"provider": "sarvam", "error_rate": 0, "latency_ms": 40}
                           ).raise_for_status()
            sim.client.delete("/_sim/requests").raise_for_status()
            yield a, b, sim


def translate(gw: AppProcess, key: str) -> httpx.Response:
    return gw.client.post("/v1/translate", headers={"authorization": f"Bearer {key}"},
                          json={"input": TEXT, "source_language_code": "en-IN", "target_language_code": "hi-IN"})


def metric(gw: AppProcess, family: str, **labels: str) -> float:
    text = gw.client.get("/metrics").text
    return sum(s.value for m in text_string_to_metric_families(text) if m.name == family for s in m.samples
               if s.name == family + "_total" and all(s.labels.get(k) == v for k, v in labels.items()))


def test_two_replicas_together_overspend_a_budget_by_at_most_one_call_each(
        two_replicas: tuple[AppProcess, AppProcess, AppProcess]) -> None:
    a, b, sim = two_replicas
    answers: list[httpx.Response] = []
    lock = threading.Lock()

    def caller(gw: AppProcess) -> None:
        for _ in range(6):
            response = translate(gw, "key-a")
            with lock:
                answers.append(response)

    with ThreadPoolExecutor(8) as pool:  # four callers at once on each replica
        for future in [pool.submit(caller, gw) for gw in (a, b) for _ in range(4)]:
            future.result()

    served = [r for r in answers if r.status_code == 200]
    refused = [r for r in answers if r.status_code != 200]
    spent = len(served) * CALL_USD
    assert BUDGET_USD <= spent <= BUDGET_USD + 2 * CALL_USD, (len(served), spent)
    assert refused and all(r.status_code == 429 for r in refused)
    problem = refused[0]
    assert problem.headers["content-type"].startswith("application/problem+json")
    assert problem.json()["error_type"] == "budget_exceeded"
    assert "team-a" in problem.json()["detail"] and int(problem.headers["retry-after"]) >= 1
    # Refused before any upstream I/O: the simulator saw the served calls only.
    upstream = [r for r in sim.client.get("/_sim/requests", params={"provider": "sarvam"}).json()
                if r["operation"] == "translate"]
    assert len(upstream) == len(served)
    # Counted like every refusal, and the cost counted where it was spent.
    for gw in (a, b):
        assert metric(gw, "provider_client_rejections", provider="sarvam", reason="budget_exceeded") > 0
    fleet_cost = sum(metric(gw, "provider_client_cost_usd", client="team-a") for gw in (a, b))
    assert fleet_cost == pytest.approx(spent, rel=1e-9)
    # Both replicas refuse the spent client now; another client is still served.
    for gw in (a, b):
        assert translate(gw, "key-a").status_code == 429
        assert translate(gw, "key-b").status_code == 200
