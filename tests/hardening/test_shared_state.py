"""Two gateway processes on one Redis: a shared rate limit, a shared breaker, a shared provider hold,
one Redis round trip per call, and Redis stopped and restarted under traffic (served throughout,
shown in /health/ and /metrics, alerted by GatewayStateBackendDown, and recovered by itself)."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from app.resilience.shared_state import SharedState
from tests.audio import wav
from tests.gateway import running_gateway
from tests.support import wait_until

from .servers import (
    AppProcess,
    RedisServer,
    gateway_process,
    redis_server,
    simulated_providers,
    simulator_process,
)

pytestmark = pytest.mark.stack

# Each test uses its own provider, so that they share two processes without sharing state.
REPLICA_ENV = {
    "FALLBACKS_ENABLED": "false",
    "SARVAM_RATE_LIMIT": "10",  # the shared limit
    "DEEPGRAM_MAX_FAILURES": "3",  # the shared breaker (tts) and the shared hold (stt)
    "DEEPGRAM_CIRCUIT_RESET_TIME": "60",
    "OPENAI_MAX_FAILURES": "2",  # one half-open trial for the cluster (embeddings)
    "OPENAI_CIRCUIT_RESET_TIME": "1",
    # GatewayStateBackendDown fires 1 s after Redis is lost, evaluated 4 times a second.
    "ALERT_FOR": "1s",
    "ALERT_EVAL_INTERVAL": "250ms",
}
STATE_ALERT = "GatewayStateBackendDown"


class Cluster:
    def __init__(self, redis: RedisServer, simulator: AppProcess, a: AppProcess, b: AppProcess) -> None:
        self.redis, self.simulator, self.a, self.b = redis, simulator, a, b

    def fault(self, provider: str, **fields: Any) -> None:
        self.simulator.client.put("/_sim/faults", json={"provider": provider, **fields}).raise_for_status()

    def clear(self) -> None:
        self.simulator.client.delete("/_sim/faults").raise_for_status()
        self.simulator.client.delete("/_sim/requests").raise_for_status()

    def upstream(self, provider: str, operation: str | None = None) -> int:
        response = self.simulator.client.get("/_sim/requests", params={"provider": provider})
        response.raise_for_status()
        return sum(1 for r in response.json() if operation is None or r["operation"] == operation)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    logs = tmp_path_factory.mktemp("cluster")
    with redis_server() as redis, simulator_process(logs) as sim:
        env = {**REPLICA_ENV, **simulated_providers(sim.url), "STATE_REDIS_URL": redis.url}
        with gateway_process(env, logs, "replica-a") as a, gateway_process(env, logs, "replica-b") as b:
            for gw in (a, b):  # the start-up health checks reach the simulator: not during a test
                wait_until(lambda gw=gw: all(p["last_active_check"] is not None for p in  # type: ignore[misc]
                                             gw.client.get("/health/services").json()["providers"].values()),
                           15, "the first active health checks", interval=0.1)
            yield Cluster(redis, sim, a, b)


@pytest.fixture
def replicas(cluster: Cluster) -> Iterator[Cluster]:
    cluster.clear()
    yield cluster
    cluster.clear()


def translate(gw: AppProcess) -> httpx.Response:
    return gw.client.post("/v1/translate", json={"input": "hello", "source_language_code": "en-IN",
                                                 "target_language_code": "hi-IN"})


def deepgram_tts(gw: AppProcess) -> httpx.Response:
    return gw.client.post("/v1/tts", json={"text": "hello", "language_code": "en-US", "provider": "deepgram"})


def deepgram_stt(gw: AppProcess) -> httpx.Response:
    return gw.client.post("/v1/stt", files={"file": ("a.wav", wav(0.5), "audio/wav")},
                          data={"language_code": "en-US", "provider": "deepgram"})


def embeddings(client: httpx.Client) -> httpx.Response:
    return client.post("/v1/embeddings", json={"model": "text-embedding-3-small", "input": "x"})


def chat(gw: AppProcess) -> httpx.Response:
    return gw.client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]})


def problem(response: httpx.Response, status: int, error_type: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error_type"] == error_type


def test_replicas_together_admit_exactly_the_rate_limit(replicas: Cluster) -> None:
    pairs = list(itertools.islice(itertools.cycle([replicas.a, replicas.b]), 14))
    statuses = [translate(gw).status_code for gw in pairs]
    assert statuses == [200] * 10 + [429] * 4
    problem(translate(replicas.a), 429, "rate_limited")
    problem(translate(replicas.b), 429, "rate_limited")
    assert replicas.upstream("sarvam", "translate") == 10
    # The windows are the `limits` library's own: its limiter over the same Redis reads them.
    assert asyncio.run(remaining(replicas.redis.url, "sarvam", 10, 60)) == 0
    assert asyncio.run(remaining(replicas.redis.url, "deepgram", 10, 60)) == 10


async def remaining(url: str, provider: str, limit: int, window: float) -> int:
    shared = SharedState(url)
    try:
        return await shared.limiter.remaining(provider, limit, window)
    finally:
        await shared.aclose()


def test_a_breaker_opened_through_one_replica_rejects_in_the_other(replicas: Cluster) -> None:
    replicas.fault("deepgram", operation="tts", error_rate=1.0, status_code=500)
    for _ in range(3):
        problem(deepgram_tts(replicas.a), 502, "upstream_5xx")
    calls = replicas.upstream("deepgram", "tts")
    assert calls == 3
    rejected = deepgram_tts(replicas.b)
    problem(rejected, 503, "circuit_open")
    assert 1 <= int(rejected.headers["retry-after"]) <= 60
    assert replicas.upstream("deepgram", "tts") == calls  # B never called the provider


def test_a_provider_retry_after_seen_by_one_replica_holds_the_other(replicas: Cluster) -> None:
    replicas.fault("deepgram", operation="stt", error_rate=1.0, status_code=429, retry_after=3)
    problem(deepgram_stt(replicas.a), 429, "upstream_rate_limited")
    replicas.clear()
    held = deepgram_stt(replicas.b)
    problem(held, 429, "upstream_rate_limited")
    assert 1 <= int(held.headers["retry-after"]) <= 3
    assert replicas.upstream("deepgram") == 0
    time.sleep(3.1)
    assert deepgram_stt(replicas.b).status_code == 200


def test_half_open_lets_one_trial_through_for_the_whole_cluster(replicas: Cluster) -> None:
    replicas.fault("openai", operation="embeddings", error_rate=1.0, status_code=500)
    for _ in range(2):
        problem(embeddings(replicas.a.client), 502, "upstream_5xx")
    problem(embeddings(replicas.b.client), 503, "circuit_open")
    time.sleep(1.2)
    # A slow but good trial: every other caller arrives while it is in flight.
    replicas.fault("openai", operation="embeddings", latency_ms=2000)
    replicas.simulator.client.delete("/_sim/requests").raise_for_status()
    clients = [httpx.Client(base_url=gw.url, timeout=30) for gw in (replicas.a, replicas.b) * 10]
    with ThreadPoolExecutor(len(clients)) as pool:
        statuses = list(pool.map(lambda client: embeddings(client).status_code, clients))
    for client in clients:
        client.close()
    assert sorted(statuses) == [200] + [503] * 19
    assert replicas.upstream("openai", "embeddings") == 1
    assert embeddings(replicas.b.client).status_code == 200  # the trial closed it for everyone


ADMIT_ONLY = ("hmget", "lindex", "lpush", "ltrim")
"""Commands only the admit script runs."""
FLEET_SCRIPT = ("get", "expire", "incr", "hincrby", "hincrbyfloat", "hset", "hget", "zadd", "zremrangebyscore",
                "zrangebyscore", "hgetall", "hdel")
"""Commands the fleet flush runs too (the in-app view's buckets; ``hvals`` once per flush)."""


def test_a_call_costs_one_redis_round_trip(replicas: Cluster) -> None:
    with replicas.redis.client() as client:
        client.config_resetstat()
    started = time.monotonic()
    for _ in range(20):
        assert chat(replicas.a).status_code == 200
    calls = replicas.redis.command_calls()
    elapsed = time.monotonic() - started
    # Besides the calls, each replica flushes its recorded buckets about once a second, one
    # script each time, whatever the traffic: never a round trip per call.
    flushes = calls.pop("hvals", 0)
    assert flushes <= 2 * (elapsed + 1) + 2, (flushes, elapsed)
    # Redis counts the commands a script runs too; those of the admit script run once per call.
    assert calls.pop("evalsha", 0) == 20 + flushes
    for command in ADMIT_ONLY:
        assert calls.pop(command, 0) <= 20, command
    for command in FLEET_SCRIPT:
        calls.pop(command, None)
    for command in ("config|resetstat", "info", "hello", "client|setinfo"):  # ours, or a new connection's
        calls.pop(command, None)
    assert calls == {}  # no MULTI/EXEC writes, no other reads on the happy path


def state_component(gw: AppProcess) -> dict[str, Any]:
    response = gw.client.get("/health/")
    assert response.status_code == 200, response.text
    component: dict[str, Any] = response.json()["components"]["state"]
    return component


def state_alert(gw: AppProcess) -> tuple[str | None, list[dict[str, Any]]]:
    """GatewayStateBackendDown in ``/health/alerts``: its state (None when not active) and its
    resolved entries."""
    response = gw.client.get("/health/alerts")
    assert response.status_code == 200, response.text
    body = response.json()
    active = [a for a in body["alerts"] if a["name"] == STATE_ALERT]
    assert len(active) <= 1, active
    if active:
        assert active[0]["labels"] == {"alertname": STATE_ALERT, "backend": "redis", "severity": "warning"}
        assert active[0]["provider"] is None and active[0]["operation"] is None
    return (active[0]["state"] if active else None), [a for a in body["resolved"] if a["name"] == STATE_ALERT]


def state_gauge(gw: AppProcess) -> list[str]:
    """The ``gateway_state_backend_up`` samples of ``/metrics``."""
    response = gw.client.get("/metrics")
    assert response.status_code == 200, response.text
    return [line for line in response.text.splitlines() if line.startswith("gateway_state_backend_up")]


def test_redis_stopped_and_restarted_under_traffic(replicas: Cluster) -> None:
    statuses: list[int] = []
    stop = threading.Event()

    def traffic(gw: AppProcess) -> None:
        with httpx.Client(base_url=gw.url, timeout=30) as client:
            while not stop.is_set():
                response = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]})
                statuses.append(response.status_code)
                time.sleep(0.01)

    threads = [threading.Thread(target=traffic, args=(gw,)) for gw in (replicas.a, replicas.b) for _ in range(2)]
    for thread in threads:
        thread.start()
    up, down = ['gateway_state_backend_up{backend="redis"} 1.0'], ['gateway_state_backend_up{backend="redis"} 0.0']
    both = (replicas.a, replicas.b)
    try:
        time.sleep(0.5)
        assert state_component(replicas.a)["status"] == "healthy"
        for gw in both:
            assert state_gauge(gw) == up and state_alert(gw) == (None, [])
        replicas.redis.stop()
        wait_until(lambda: all(state_component(gw)["status"] == "degraded" for gw in both),
                   5, "/health/ did not show the state component degraded while Redis was down", interval=0.1)
        down_component = state_component(replicas.b)
        assert down_component["backend"] == "redis" and down_component["reasons"]
        assert replicas.a.client.get("/health/").json()["status"] == "degraded"
        assert all(state_gauge(gw) == down for gw in both)
        served_while_down = len(statuses)
        wait_until(lambda: all(state_alert(gw)[0] == "firing" for gw in both), 5,
                   f"{STATE_ALERT} did not fire while Redis was down", interval=0.1)
        assert len(statuses) > served_while_down  # still serving, from local state
        replicas.redis.start()
        wait_until(lambda: all(state_component(gw)["status"] == "healthy" for gw in both),
                   6, "the state component did not recover after Redis came back", interval=0.1)
        assert all(state_gauge(gw) == up for gw in both)
        wait_until(lambda: all(state_alert(gw)[0] is None for gw in both), 2,
                   f"{STATE_ALERT} did not resolve once Redis answered", interval=0.1)
        for gw in both:
            [resolved] = state_alert(gw)[1]
            assert resolved["state"] == "resolved" and resolved["resolved_at"] > resolved["fired_at"]
        before = replicas.redis.command_calls().get("evalsha", 0)
        time.sleep(0.5)
        assert replicas.redis.command_calls().get("evalsha", 0) > before  # shared again
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert len(statuses) > 50
    assert set(statuses) == {200}, {s: statuses.count(s) for s in set(statuses)}
    for gw in (replicas.a, replicas.b):
        assert "Redis unreachable" in gw.output() and "Redis answers again" in gw.output()


def test_a_gateway_without_redis_serves_locally_shares_once_it_answers_and_notices_it_gone_when_idle() -> None:
    redis = RedisServer()  # not started yet
    with running_gateway({"STATE_REDIS_URL": redis.url, "SARVAM_RATE_LIMIT": "1000"}) as gw:
        shared = gw.manager.pipeline.shared
        assert shared is not None and shared.health().status == "down"
        assert gw.translate().status_code == 200  # from the replica's own limiter and breaker
        redis.start()
        try:
            wait_until(lambda: shared.health().status == "up", 5, "shared state did not recover", 0.1)
            assert gw.translate().status_code == 200
            assert redis.command_calls().get("evalsha", 0) >= 1  # shared again
        finally:
            redis.stop()
        # Without any traffic, a lost Redis still shows within a few seconds.
        wait_until(lambda: shared.health().status == "down", 5, "an idle gateway did not notice Redis going",
                   0.1)
