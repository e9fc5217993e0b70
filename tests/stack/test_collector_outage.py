"""The Collector stopped for 10 s under traffic: the gateway keeps answering at its usual latency,
its span queue stays within its capacity (what does not fit is dropped and counted by the SDK's own
metrics on ``/metrics``), and exporting resumes when the Collector is back on the same ports."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping

import pytest
from prometheus_client.parser import text_string_to_metric_families

from .otlp import Traced, traced_gateway

OUTAGE = 10.0
BASELINE = 3.0
QUEUE = 256
"""The span queue's capacity (``OTEL_BSP_MAX_QUEUE_SIZE``), small so that the outage fills it."""
SPAN_QUEUE = {"OTEL_BSP_MAX_QUEUE_SIZE": str(QUEUE), "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": str(QUEUE // 4)}
PROCESSOR = {"otel_component_type": "batching_span_processor"}


def sdk_metric(traced: Traced, name: str, labels: Mapping[str, str], errors: bool = False) -> float:
    """The sum of the gateway's ``name`` samples with these labels (0 when there are none); with
    ``errors``, of those with an ``error_type`` only."""
    text = traced.gateway.client.get("/metrics").text
    return sum(s.value for family in text_string_to_metric_families(text) for s in family.samples
               if s.name == name and labels.items() <= s.labels.items() and (not errors or "error_type" in s.labels))


def traffic(traced: Traced, seconds: float, between: Callable[[], None] = lambda: None) -> list[float]:
    """Translate calls one after another for ``seconds``; their latencies. ``between`` runs after each."""
    latencies: list[float] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        started = time.perf_counter()
        response = traced.gateway.translate()
        latencies.append(time.perf_counter() - started)
        assert response.status_code == 200, response.text
        between()
    return latencies


def percentiles(latencies: list[float]) -> tuple[float, float]:
    """(p50, p99) in milliseconds."""
    cuts = statistics.quantiles(latencies, n=100)
    return cuts[49] * 1000, cuts[98] * 1000


def test_the_gateway_rides_out_a_collector_outage(tmp_path_factory: pytest.TempPathFactory) -> None:
    env = {"SARVAM_RATE_LIMIT": "1000000", "FALLBACKS_ENABLED": "false"}
    with traced_gateway(tmp_path_factory.mktemp("outage"), env, SPAN_QUEUE) as traced:
        collector = traced.stack.daemons["otelcol"]
        assert sdk_metric(traced, "otel_sdk_processor_span_queue_capacity", PROCESSOR) == QUEUE
        before = traffic(traced, BASELINE)

        collector.stop()
        queue_sizes: list[float] = []
        last_look = [time.monotonic()]

        def look_at_the_queue() -> None:
            if time.monotonic() - last_look[0] > 0.5:
                queue_sizes.append(sdk_metric(traced, "otel_sdk_processor_span_queue_size", PROCESSOR))
                last_look[0] = time.monotonic()

        during = traffic(traced, OUTAGE, look_at_the_queue)
        full = {**PROCESSOR, "error_type": "queue_full"}
        dropped = sdk_metric(traced, "otel_sdk_processor_span_processed_total", full)
        failed = sdk_metric(traced, "otel_sdk_exporter_span_exported_total", {}, errors=True)
        collector.start()
        collector.wait_ready()

        (p50_before, p99_before), (p50_during, p99_during) = percentiles(before), percentiles(during)
        print(f"\nbefore: {len(before)} calls, p50 {p50_before:.1f} ms, p99 {p99_before:.1f} ms; "
              f"collector down {OUTAGE:g} s: {len(during)} calls, p50 {p50_during:.1f} ms, p99 {p99_during:.1f} ms; "
              f"spans dropped (queue full) {dropped:g}, spans whose export failed {failed:g}, "
              f"queue sizes seen {min(queue_sizes):g}..{max(queue_sizes):g} of {QUEUE}")
        # Exporting runs beside the requests, never in their way: a blocked export would cost seconds.
        assert p50_during <= 2 * p50_before + 5, "median latency while the Collector is down"
        assert p99_during <= 3 * p99_before + 50, "p99 latency while the Collector is down"
        assert max(queue_sizes) <= QUEUE and dropped > 0 and failed > 0

        response = traced.gateway.translate()
        trace_id = response.headers["traceresponse"].split("-")[1]
        assert traced.trace(trace_id, 4, timeout=30), "a call made after the restart reaches Jaeger"
