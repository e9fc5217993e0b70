"""Metrics after known sequences of calls, read from ``/metrics`` and an in-memory reader."""

from __future__ import annotations

import httpx
import pytest
from opentelemetry.sdk.metrics.export import (
    DataPointT,
    HistogramDataPoint,
    InMemoryMetricReader,
    NumberDataPoint,
)
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from app.calls import LATENCY_BUCKETS, CallContext, CallSpec, invalid
from app.telemetry import MAX_MODEL_LABELS, OTHER_MODEL

from .conftest import Gateway
from .gateway import Harness

# DESIGN.md's telemetry contract: Prometheus family -> the labels every one of its series carries.
CONTRACT: dict[str, set[str]] = {
    "provider_client_request_duration_seconds": {"provider", "operation", "outcome", "error_type"},
    "provider_client_rejections_total": {"provider", "operation", "reason"},
    "provider_circuit_state": {"provider", "operation"},
    "provider_circuit_opened_total": {"provider", "operation"},
    "provider_client_time_to_first_byte_seconds": {"provider", "operation"},
    "provider_client_audio_duration_seconds_total": {"provider", "operation"},
    "provider_client_characters_total": {"provider", "operation"},
    "gen_ai_client_operation_duration_seconds": {
        "gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model"},
    "gen_ai_client_token_usage": {
        "gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model", "gen_ai_token_type"},
}
SUFFIXES = ("_bucket", "_count", "_sum", "_total", "_created")


def scrape(client: httpx.Client) -> list[Sample]:
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    return [s for family in text_string_to_metric_families(response.text) for s in family.samples]


def series(samples: list[Sample], family: str, **labels: str) -> list[Sample]:
    """Samples of ``family`` (its name or name plus a standard suffix) whose labels include ``labels``."""
    names = {family} | {family + suffix for suffix in SUFFIXES}
    return [s for s in samples if s.name in names and labels.items() <= s.labels.items()]


def value(samples: list[Sample], name: str, **labels: str) -> float:
    [sample] = [s for s in samples if s.name == name and labels.items() <= s.labels.items()]
    return sample.value


def _sequence(client: httpx.Client, sim: httpx.Client) -> None:
    """3 successes, 2 upstream 5xx (opening a 2-failure breaker), 1 circuit_open, 1 invalid input,
    1 streamed TTS and 1 chat."""
    for text in ("one", "two", "six"):
        assert client.post("/translate", json={"input": text}).status_code == 201
    assert client.post("/translate", json={"input": ""}).status_code == 400
    assert client.post("/tts", json={"text": "namaste"}).status_code == 201
    assert client.post("/chat", json={"text": "hello"}).status_code == 201
    sim.put("/faults", json={"provider": "sarvam", "operation": "translate", "error_rate": 1.0}).raise_for_status()
    for _ in range(2):
        assert client.post("/translate", json={"input": "four"}).status_code == 502
    assert client.post("/translate", json={"input": "four"}).status_code == 503


def test_every_metric_and_label_of_the_contract_is_exposed(gateway: Gateway, sim: httpx.Client) -> None:
    with gateway({"SARVAM_MAX_FAILURES": "2"}) as (client, _):
        _sequence(client, sim)
        samples = scrape(client)
    for family, labels in CONTRACT.items():
        found = series(samples, family)
        assert found, f"{family} missing from /metrics"
        for sample in found:
            assert labels <= sample.labels.keys(), (family, sample.labels)
    failed = series(samples, "gen_ai_client_operation_duration_seconds")
    assert all("error_type" not in s.labels or s.labels["error_type"] == "" for s in failed)


def test_known_sequence_gives_exact_values(gateway: Gateway, sim: httpx.Client) -> None:
    with gateway({"SARVAM_MAX_FAILURES": "2"}) as (client, _):
        _sequence(client, sim)
        samples = scrape(client)

    translate = {"provider": "sarvam", "operation": "translate"}
    duration = "provider_client_request_duration_seconds"
    assert value(samples, duration + "_count", **translate, outcome="success") == 3
    assert value(samples, duration + "_count", **translate, outcome="error", error_type="upstream_5xx") == 2
    assert value(samples, duration + "_count", **translate, outcome="success", error_type="") == 3
    bounds = {s.labels["le"] for s in series(samples, duration, **translate, outcome="success")
              if s.name.endswith("_bucket")}
    assert {"5.0", "10.0", "+Inf"} <= bounds and len(bounds) == len(LATENCY_BUCKETS) + 1
    assert value(samples, duration + "_bucket", **translate, outcome="success", le="+Inf") == 3
    assert value(samples, duration + "_bucket", **translate, outcome="success", le="10.0") == 3

    rejections = "provider_client_rejections_total"
    assert value(samples, rejections, **translate, reason="circuit_open") == 1
    assert value(samples, rejections, **translate, reason="invalid_input") == 1
    assert value(samples, rejections, **translate, reason="rate_limited") == 0  # published at zero
    assert value(samples, "provider_circuit_state", **translate) == 2
    assert value(samples, "provider_circuit_opened_total", **translate) == 1
    chat = {"provider": "openai", "operation": "chat"}
    assert value(samples, "provider_circuit_state", **chat) == 0
    assert value(samples, "provider_circuit_opened_total", **chat) == 0
    # Characters are counted per attempt that reached the provider: 3 x 3 + 2 x 4.
    assert value(samples, "provider_client_characters_total", **translate) == 17

    tts = {"provider": "sarvam", "operation": "tts"}
    assert value(samples, "provider_client_time_to_first_byte_seconds_count", **tts) == 1
    assert value(samples, "provider_client_audio_duration_seconds_total", **tts) > 0
    assert value(samples, "provider_client_characters_total", **tts) == len("namaste")
    assert not series(samples, "provider_client_time_to_first_byte_seconds", **translate)


def test_genai_metrics_carry_the_semconv_attributes(gateway: Gateway, sim: httpx.Client) -> None:
    with gateway({"OPENAI_MODEL": "gpt-test"}) as (client, _):
        usage = client.post("/chat", json={"text": "hello there"}).json()["usage"]
        sim.put("/faults", json={"provider": "openai", "error_rate": 1.0, "status_code": 500}).raise_for_status()
        assert client.post("/chat", json={"text": "again"}).status_code == 502
        samples = scrape(client)

    gen_ai = {"gen_ai_operation_name": "chat", "gen_ai_provider_name": "openai", "gen_ai_request_model": "gpt-test"}
    duration = "gen_ai_client_operation_duration_seconds_count"
    assert value(samples, duration, **gen_ai, error_type="") == 1
    assert value(samples, duration, **gen_ai, error_type="upstream_5xx") == 1
    tokens = "gen_ai_client_token_usage_sum"
    assert value(samples, tokens, **gen_ai, gen_ai_token_type="input") == usage["prompt_tokens"]
    assert value(samples, tokens, **gen_ai, gen_ai_token_type="output") == usage["completion_tokens"]
    assert {s.labels["le"] for s in series(samples, "gen_ai_client_token_usage") if "le" in s.labels} >= {"1.0", "4.0"}


def _points(reader: InMemoryMetricReader, name: str) -> list[DataPointT]:
    data = reader.get_metrics_data()
    assert data is not None
    return [p for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics if m.name == name
            for p in m.data.data_points]


def _series_count(reader: InMemoryMetricReader) -> int:
    data = reader.get_metrics_data()
    assert data is not None
    return sum(len(m.data.data_points) for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics)


async def _fake_call(harness: Harness, model: str, text: str) -> None:
    """A call through the real pipeline whose attempt answers at once (no upstream needed)."""
    spec = CallSpec("openai", "chat", model=model, gen_ai_operation="chat")

    async def attempt(ctx: CallContext) -> None:
        ctx.characters, ctx.input_tokens, ctx.output_tokens = len(text), len(text), 1

    await harness.pipeline.call(spec, attempt)


@pytest.mark.unit
async def test_distinct_models_and_texts_do_not_grow_the_series(harness: Harness) -> None:
    for n in range(100):
        await _fake_call(harness, f"user-model-{n}", f"text {n}")
    before = _series_count(harness.reader)
    for n in range(100, 1100):
        await _fake_call(harness, f"user-model-{n}", f"text {n}")
    assert _series_count(harness.reader) == before
    await _fake_call(harness, "gpt-test", "the configured model is always its own label")

    models = {p.attributes["gen_ai.request.model"] for p in _points(harness.reader, "gen_ai.client.operation.duration")
              if p.attributes}
    assert {OTHER_MODEL, "gpt-test", "user-model-0"} <= models
    assert len(models) == MAX_MODEL_LABELS + 2  # the configured model, 10 others, _other
    text = harness.telemetry.metrics_text().decode()
    assert "text 1099" not in text and "user-model-1099" not in text


@pytest.mark.unit
async def test_health_checks_stay_out_of_the_request_metrics(harness: Harness) -> None:
    spec = CallSpec("sarvam", "health")

    async def probe(ctx: CallContext) -> None:
        ctx.characters = 5

    await harness.pipeline.call(spec, probe, health_check=True)
    for name in ("provider.client.request.duration", "provider.client.characters", "provider.circuit.state",
                 "provider.client.rejections", "provider.circuit.opened"):
        assert _points(harness.reader, name) == [], name
    [check] = _points(harness.reader, "provider.health_check.duration")
    assert isinstance(check, HistogramDataPoint) and check.count == 1
    assert dict(check.attributes or {}) == {"provider": "sarvam", "operation": "health", "outcome": "success"}


@pytest.mark.unit
async def test_rejected_invalid_input_is_counted_without_a_duration(harness: Harness) -> None:
    spec = CallSpec("sarvam", "translate")

    async def never(ctx: CallContext) -> None:
        raise AssertionError("invalid input must not reach the provider")

    def validate() -> None:
        raise invalid("bad")

    with pytest.raises(Exception, match="bad"):
        await harness.pipeline.call(spec, never, validate=validate)
    assert _points(harness.reader, "provider.client.request.duration") == []
    counts = {p.attributes["reason"]: p.value for p in _points(harness.reader, "provider.client.rejections")
              if p.attributes and isinstance(p, NumberDataPoint)}
    assert counts == {"invalid_input": 1, "circuit_open": 0, "rate_limited": 0, "overloaded": 0, "budget_exceeded": 0}


def test_metrics_carry_no_client_chosen_labels_and_no_http_server_or_client_series(gateway: Gateway) -> None:
    """Requests are measured by the provider metrics; the HTTP instrumentations' ``http.server.*``
    and ``http.client.*`` metrics (which nothing reads) are not recorded at all."""
    with gateway() as (client, _):
        client.post("/translate", json={"input": "x"}, headers={"host": "attacker-chosen.example"})
        client.get("/no/such/path-4711")
        samples = scrape(client)
    assert value(samples, "provider_client_request_duration_seconds_count", provider="sarvam",
                 operation="translate", outcome="success") == 1
    assert not [s.name for s in samples if s.name.startswith(("http_server_", "http_client_"))]
    text = " ".join(f"{s.name}{s.labels}" for s in samples)
    assert "attacker-chosen" not in text and "path-4711" not in text
