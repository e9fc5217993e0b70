"""``GET /health/usage?window=``: calls, billed units and cost per provider operation and per client,
answered by the in-app recorder without the external stack; ``/status`` shows what each provider
has cost today. One replica alone says its view is local; two replicas on one real Redis each
answer the fleet's usage and spend, export the fleet's spend this day and month
(``provider_spend_usd``) and page when the fleet, not either replica alone, has spent the monthly
budget."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.gateway import Gateway, running_gateway
from tests.hardening.servers import AppProcess, gateway_process, redis_server, simulated_providers, simulator_process
from tests.support import wait_until

INR_PER_USD = 89.44


@pytest.fixture(scope="module")
def gw() -> Iterator[Gateway]:
    with running_gateway({"GATEWAY_API_KEYS": "team-a:key-a,key-b"}) as gateway:
        yield gateway


def translate(gw: Gateway, key: str, text: str) -> None:
    httpx.post(f"{gw.url}/v1/translate", headers={"authorization": f"Bearer {key}"}, timeout=30, json={
        "input": text, "source_language_code": "en-IN", "target_language_code": "hi-IN"}).raise_for_status()


def test_usage_over_a_window_per_provider_operation_and_per_client(gw: Gateway) -> None:
    translate(gw, "key-a", "x" * 100)
    translate(gw, "key-a", "y" * 50)
    translate(gw, "key-b", "z" * 10)
    answer = gw.client.get("/health/usage", params={"window": "5m"})
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert report["window"] == "5m" and report["view"] == "local"  # no STATE_REDIS_URL
    per_character = 20 / 10_000 / INR_PER_USD
    translate_usage = report["services"]["sarvam.translate"]
    assert translate_usage["requests"] == 3 and translate_usage["units"] == {"character": 160}
    assert translate_usage["cost_usd"] == pytest.approx(160 * per_character, rel=1e-6)
    assert report["clients"]["team-a"]["cost_usd"] == pytest.approx(150 * per_character, rel=1e-6)
    assert report["clients"]["anonymous"]["units"] == {"character": 10}
    assert report["total"]["cost_usd"] == pytest.approx(160 * per_character, rel=1e-6)


def test_a_bad_window_is_a_problem_naming_it(gw: Gateway) -> None:
    answer = gw.client.get("/health/usage", params={"window": "soon"})
    assert answer.status_code == 400
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert "window" in answer.json()["detail"]


def test_the_status_page_shows_todays_spend(gw: Gateway) -> None:
    translate(gw, "key-a", "w" * 1000)
    page = gw.client.get("/status").text
    assert "Spent today" in page and "this replica&#39;s calls" in page and "sarvam" in page


def test_the_spend_this_day_and_month_is_a_gauge_of_what_the_cost_counter_counted(gw: Gateway) -> None:
    translate(gw, "key-b", "v" * 200)
    families = list(text_string_to_metric_families(gw.client.get("/metrics").text))
    counted = sum(s.value for m in families if m.name == "provider_client_cost_usd" for s in m.samples
                  if s.name.endswith("_total") and s.labels["provider"] == "sarvam")
    spend = {s.labels["period"]: s.value for m in families if m.name == "provider_spend_usd" for s in m.samples
             if s.labels["provider"] == "sarvam"}
    assert counted > 0 and spend == pytest.approx({"day": counted, "month": counted}, rel=1e-9)


MONTHLY_USD = 0.04
"""Sarvam's monthly budget: 1789 characters translated; the test's calls translate 2000, 1600 of them
through one replica."""


def spend_gauge(gw: AppProcess) -> dict[str, float]:
    text = gw.client.get("/metrics").text
    return {s.labels["period"]: s.value for m in text_string_to_metric_families(text) if m.name == "provider_spend_usd"
            for s in m.samples if s.labels["provider"] == "sarvam"}


def budget_pages(gw: AppProcess) -> list[float]:
    alerts = gw.client.get("/health/alerts").json()["alerts"]
    return [a["value"] for a in alerts if a["name"] == "ProviderBudgetBurn" and a["severity"] == "critical"
            and a["state"] == "firing" and a["provider"] == "sarvam"]


@pytest.fixture
def replicas(tmp_path: Path) -> Iterator[tuple[AppProcess, AppProcess]]:
    with redis_server() as redis, simulator_process(tmp_path) as sim:
        env = {**simulated_providers(sim.url), "STATE_REDIS_URL": redis.url, "FALLBACKS_ENABLED": "false",
               "SARVAM_RATE_LIMIT": "10000", "GATEWAY_API_KEYS": "team-a:key-a,team-b:key-b,key-c",
               "LOG_LEVEL": "warning", "SARVAM_BUDGET_MONTHLY_USD": str(MONTHLY_USD), "ALERT_EVAL_INTERVAL": "1s"}
        with gateway_process(env, tmp_path, "replica-a") as a, gateway_process(env, tmp_path, "replica-b") as b:
            yield a, b


def translate_on(gw: AppProcess, key: str, text: str) -> None:
    gw.client.post("/v1/translate", headers={"authorization": f"Bearer {key}"}, json={
        "input": text, "source_language_code": "en-IN", "target_language_code": "hi-IN"}).raise_for_status()


@pytest.mark.stack
def test_two_replicas_on_one_redis_each_answer_the_fleets_usage_and_spend(
        replicas: tuple[AppProcess, AppProcess]) -> None:
    a, b = replicas
    translate_on(a, "key-a", "a" * 1000)
    translate_on(a, "key-a", "b" * 600)
    spent_on_a = 1600 * 20 / 10_000 / INR_PER_USD
    wait_until(lambda: spend_gauge(a) == pytest.approx({"day": spent_on_a, "month": spent_on_a}, rel=1e-9), 10,
               "replica a's spend on /metrics", interval=0.2)
    assert budget_pages(a) == []  # under the monthly budget
    translate_on(b, "key-b", "c" * 300)
    translate_on(b, "key-c", "d" * 100)
    per_character = 20 / 10_000 / INR_PER_USD

    def usage(gw: AppProcess) -> dict[str, Any]:
        answer = gw.client.get("/health/usage", params={"window": "10m"})
        assert answer.status_code == 200, answer.text
        report: dict[str, Any] = answer.json()
        return report

    whole_month = [pytest.approx(2000 * per_character / MONTHLY_USD, rel=1e-9)]
    for gw in (a, b):  # each flushes its deltas once a second and reads back the fleet's
        wait_until(lambda gw=gw: usage(gw)["total"]["requests"] == 4, 10,  # type: ignore[misc]
                   "both replicas' calls in the fleet's usage", interval=0.2)
        report = usage(gw)
        assert report["view"] == "fleet"
        translate_usage = report["services"]["sarvam.translate"]
        assert translate_usage["units"] == {"character": 2000} and translate_usage["unpriced"] == 0
        assert translate_usage["cost_usd"] == pytest.approx(2000 * per_character, rel=1e-9)
        clients = report["clients"]
        assert set(clients) == {"team-a", "team-b", "anonymous"}
        assert clients["team-a"]["requests"] == 2
        assert clients["team-a"]["cost_usd"] == pytest.approx(1600 * per_character, rel=1e-9)
        assert clients["team-b"]["cost_usd"] == pytest.approx(300 * per_character, rel=1e-9)
        assert clients["anonymous"]["units"] == {"character": 100}
        assert report["total"]["cost_usd"] == pytest.approx(2000 * per_character, rel=1e-9)
        page = gw.client.get("/status").text
        assert "the fleet&#39;s calls" in page
        assert f"sarvam ${2000 * per_character:.4f}" in page
        # The spend this day and month is the fleet's, on /metrics and in the evaluator: the month
        # page holds though neither replica alone spent the budget.
        assert spend_gauge(gw) == pytest.approx({"day": 2000 * per_character, "month": 2000 * per_character},
                                                rel=1e-9)
        # The page holds from the first evaluation whose month reached the budget (1,900 of the 2,000
        # characters are enough); its value is the whole month's once an evaluation has seen all four.
        wait_until(lambda gw=gw: budget_pages(gw) == whole_month, 10,  # type: ignore[misc]
                   "the monthly page at the whole month's spend", interval=0.2)
