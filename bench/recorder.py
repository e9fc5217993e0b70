"""Cost of the in-app recorder and evaluator.

Run: ``python -m bench.recorder`` (from the repository root, in the virtualenv).

Prints microseconds per recorded call (the pipeline's ``on_call`` hook and the seed's
``record_request``) and milliseconds per alert evaluation, ``/health`` status and trend query
with 100 provider operations that all have an hour of traffic.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from opentelemetry import trace

from app.calls import CallContext, CallEvent, CallSpec, ErrorType
from app.config import load_settings
from app.monitoring import Monitoring


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

    busy = Monitoring(load_settings({}), clock)
    services = [f"provider{i // 4}.op{i % 4}" for i in range(args.services)]
    start = clock.now
    for second in range(0, 3600, 10):  # an hour of traffic: 5 calls per service per 10 s bucket
        clock.now = start + second + 5
        for service in services:
            for n in range(5):
                busy.record_request(service, n != 0, 100.0 + n * 50, "upstream_5xx")
    clock.now = start + 3600

    def timed(fn: Callable[[], object], runs: int) -> float:
        started = time.perf_counter()
        for _ in range(runs):
            fn()
        return (time.perf_counter() - started) / runs * 1000

    print(f"evaluate, {args.services} services:  {timed(busy.evaluate, 20):.1f} ms/evaluation (6 rules, 5m window)")
    print(f"health status:          {timed(busy.get_health_status, 20):.1f} ms")
    print(f"trends, 1 provider:     {timed(lambda: busy.trends('provider0', '1h', '5m'), 20):.1f} ms (1h at 5m)")


if __name__ == "__main__":
    main()
