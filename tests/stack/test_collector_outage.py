"""The Collector stopped for 10 s under traffic: the gateway keeps answering at its usual latency,
its span and log record queues stay within their capacity (what does not fit is dropped and counted
by the SDK's own metrics on ``/metrics``), and exporting resumes when the Collector is back on the
same ports: a call made after the restart reaches Jaeger, and its log record the log sink."""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Callable, Mapping

import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.logs.access import LOGGER
from app.stack import logsink
from tests.support import wait_until

from .otlp import Traced, reported, traced_gateway

OUTAGE = 10.0
BASELINE = 3.0
WARM_UP = 1.0
QUEUE = 256
"""The capacity of the span and the log record queues, small so that the outage fills them."""
QUEUES = {f"OTEL_{kind}_{name}": str(size) for kind in ("BSP", "BLRP")
          for name, size in (("MAX_QUEUE_SIZE", QUEUE), ("MAX_EXPORT_BATCH_SIZE", QUEUE // 4))}
PROCESSORS = {"span": {"otel_component_type": "batching_span_processor"},
              "log": {"otel_component_type": "batching_log_processor"}}


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


def test_the_gateway_rides_out_a_collector_outage(tmp_path_factory: pytest.TempPathFactory,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    # ACCESS_LOG: a log record per call (at INFO, as `serve` logs), so that the log record queue fills too.
    caplog.set_level(logging.INFO, logger=LOGGER.name)
    env = {"SARVAM_RATE_LIMIT": "1000000", "FALLBACKS_ENABLED": "false", "ACCESS_LOG": "true"}
    with traced_gateway(tmp_path_factory.mktemp("outage"), env, QUEUES) as traced:
        collector = traced.stack.daemons["otelcol"]
        for signal, labels in PROCESSORS.items():
            assert sdk_metric(traced, f"otel_sdk_processor_{signal}_queue_capacity", labels) == QUEUE
        traffic(traced, WARM_UP)  # the first calls fill pools and caches: not the usual latency
        before = traffic(traced, BASELINE)

        collector.stop()
        queue_sizes: dict[str, list[float]] = {signal: [] for signal in PROCESSORS}
        last_look = [time.monotonic()]

        def look_at_the_queues() -> None:
            if time.monotonic() - last_look[0] > 0.5:
                for signal, labels in PROCESSORS.items():
                    queue_sizes[signal].append(sdk_metric(traced, f"otel_sdk_processor_{signal}_queue_size", labels))
                last_look[0] = time.monotonic()

        during = traffic(traced, OUTAGE, look_at_the_queues)
        dropped = {signal: sdk_metric(traced, f"otel_sdk_processor_{signal}_processed_total",
                                      {**labels, "error_type": "queue_full"}) for signal, labels in PROCESSORS.items()}
        failed = {signal: sdk_metric(traced, f"otel_sdk_exporter_{signal}_exported_total", {}, errors=True)
                  for signal in PROCESSORS}
        collector.start()
        collector.wait_ready()

        (p50_before, p99_before), (p50_during, p99_during) = percentiles(before), percentiles(during)
        print(f"\nbefore: {len(before)} calls, p50 {p50_before:.1f} ms, p99 {p99_before:.1f} ms; "
              f"collector down {OUTAGE:g} s: {len(during)} calls, p50 {p50_during:.1f} ms, p99 {p99_during:.1f} ms")
        for signal in PROCESSORS:
            print(f"{signal}s: dropped (queue full) {dropped[signal]:g}, failed to export {failed[signal]:g}, "
                  f"queue sizes seen {min(queue_sizes[signal]):g}..{max(queue_sizes[signal]):g} of {QUEUE}")
        # Exporting runs beside the requests, never in their way: a blocked export would cost seconds.
        assert p50_during <= 2 * p50_before + 5, "median latency while the Collector is down"
        assert p99_during <= 3 * p99_before + 50, "p99 latency while the Collector is down"
        for signal in PROCESSORS:
            assert max(queue_sizes[signal]) <= QUEUE and dropped[signal] > 0 and failed[signal] > 0, signal

        response = traced.gateway.translate()
        trace_id, _ = reported(response)
        assert traced.trace(trace_id, 4, timeout=30), "a call made after the restart reaches Jaeger"
        assert traced.stack.logs is not None
        path = traced.stack.logs
        wait_until(lambda: [r for r in logsink.read(path) if r["trace_id"] == trace_id], 30,
                   "the access log record of a call made after the restart in the log sink")
