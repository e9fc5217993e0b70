"""Cost of the in-app recorder and evaluator.

Run: ``python -m bench.recorder`` (from the repository root, in the virtualenv).

Prints microseconds per recorded call (the pipeline's ``on_call`` hook and the seed's
``record_request``), the memory of each ring per provider operation once full, and milliseconds
per alert evaluation, ``/health`` status, trend query and ``/health/slo`` report with 100 provider
operations that all have three days of traffic (the last hour in every fine bucket).
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc
from collections.abc import Callable

from opentelemetry import trace

from app.calls import CallContext, CallEvent, CallSpec, ErrorType
from app.config import load_settings
from app.monitoring import Monitoring
from app.monitoring.recorder import Recorder


class _Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _per_call(fn: Callable[[], None], calls: int) -> float:
    """Microseconds per call of ``fn``, best of three runs."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter() - started) / calls)
    return best * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200_000, help="recorded calls per measurement")
    parser.add_argument("--services", type=int, default=100, help="provider operations for the evaluation")
    args = parser.parse_args()

    clock = _Clock(1_699_999_200.0)
    monitoring = Monitoring(load_settings({}), clock)
    spec = CallSpec("sarvam", "tts")
    ok = CallEvent(spec, "success", None, 0.123, CallContext(spec, trace.INVALID_SPAN))
    failed = CallEvent(spec, "error", ErrorType.TIMEOUT, 30.0, CallContext(spec, trace.INVALID_SPAN))
    observer = monitoring.observer
    print(f"on_call (success):      {_per_call(lambda: observer.on_call(ok), args.calls):.2f} us/call")
    print(f"on_call (error):        {_per_call(lambda: observer.on_call(failed), args.calls):.2f} us/call")
    print(f"record_request (seed):  "
          f"{_per_call(lambda: monitoring.record_request('sarvam.tts', True, 123.0), args.calls):.2f} us/call")

    for name, ring in (("fine", monitoring.recorder), ("coarse", monitoring.history)):
        print(f"{name} ring, full:        {_ring_bytes(ring) / 1024:.0f} KiB per provider operation "
              f"({ring.horizon / ring.bucket:.0f} slots of {ring.bucket:g} s)")

    busy = Monitoring(load_settings({}), clock)
    services = [f"provider{i // 4}.op{i % 4}" for i in range(args.services)]
    start = clock.now
    # Three days of traffic, 5 calls per service every 5 minutes, then the last hour in every
    # 10 s bucket: both rings full.
    seconds = [*range(0, 3 * 86400 - 3600, 300), *range(3 * 86400 - 3600, 3 * 86400, 10)]
    for second in seconds:
        clock.now = start + second + 5
        for service in services:
            for n in range(5):
                busy.record_request(service, n != 0, 100.0 + n * 50, "upstream_5xx")
    clock.now = start + 3 * 86400
    # The rings are long-lived: in a serving process they outlive every collection, and a full
    # collection's scan of them (about a million objects here) is not the evaluation's cost.
    gc.collect()
    gc.freeze()

    def timed(fn: Callable[[], object], runs: int) -> float:
        """Milliseconds per run, the clock moving 15 s (an evaluation interval) before each."""
        elapsed = 0.0
        for _ in range(runs):
            clock.now += 15
            started = time.perf_counter()
            fn()
            elapsed += time.perf_counter() - started
        return elapsed / runs * 1000

    print(f"evaluate, {args.services} services:  {timed(busy.evaluate, 20):.1f} ms/evaluation "
          f"({len(busy.rules)} rules: 5m window, and 5m to 30d for the budget burns)")
    print(f"/health/slo report:     {timed(busy.slo_report, 20):.1f} ms (8 windows, 2 signals)")
    print(f"health status:          {timed(busy.get_health_status, 20):.1f} ms")
    print(f"trends, 1 provider:     {timed(lambda: busy.trends('provider0', '1h', '5m'), 20):.1f} ms (1h at 5m)")


def _ring_bytes(ring: Recorder) -> int:
    """Bytes one provider operation's ring holds once every slot has calls (fresh recorder, same
    resolution and horizon, a call recorded in every slot)."""
    clock = _Clock(1_699_999_200.0)
    recorder = Recorder(ring.bucket, ring.horizon, clock)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for slot in range(int(ring.horizon / ring.bucket)):
        clock.now += ring.bucket
        recorder.record("sarvam", "tts", slot % 2 == 0, 0.5, "timeout")
        recorder.on_rejection(CallSpec("sarvam", "tts"), ErrorType.RATE_LIMITED)
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return used


if __name__ == "__main__":
    main()
