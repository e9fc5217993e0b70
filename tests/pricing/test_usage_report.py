"""``GET /health/usage?window=``: calls, billed units and cost per provider operation and per client,
answered by the in-app recorder without the external stack; ``/status`` shows what each provider
has cost today."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.gateway import Gateway, running_gateway

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
    assert report["window"] == "5m" and report["view"] == "local"
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
    assert "Spent today" in page and "sarvam" in page
