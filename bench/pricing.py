"""CPU per call of pricing on the hot path, in process: what ``Pipeline._price`` and the
telemetry observer's usage and cost counters add to a translate and to a chat call, beside what
``genai_prices.calc_price`` would cost per call. Run: ``python bench/pricing.py``."""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from genai_prices import Usage, calc_price
from opentelemetry.metrics import Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from app.calls import CallContext, CallEvent, CallSpec
from app.pricing import Prices
from app.telemetry.instruments import Instruments
from app.telemetry.observer import TelemetryObserver
from app.telemetry.spend import SpendTotals


def per_call_us(work: Callable[[], object], n: int = 20_000) -> float:
    best = float("inf")
    for _ in range(5):
        started = time.process_time()
        for _ in range(n):
            work()
        best = min(best, (time.process_time() - started) / n * 1e6)
    return best


def main() -> None:
    prices = Prices()
    translate = CallContext(CallSpec("sarvam", "translate"), characters=1000, client="team-a")
    chat = CallContext(CallSpec("openai", "chat", "gpt-4o-mini", "chat"), input_tokens=1200, output_tokens=300,
                       cached_input_tokens=200, client="team-a")
    meter = MeterProvider(metric_readers=[InMemoryMetricReader()]).get_meter("bench")
    spend = SpendTotals()
    def nothing(_: object) -> list[Observation]:
        return []

    observer = TelemetryObserver(Instruments(meter, nothing, nothing, nothing, spend.observe_cost, spend.observe_usage,
                                             nothing), "gpt-4o-mini", spend)
    for name, ctx, model in (("translate", translate, None), ("chat", chat, "gpt-4o-mini")):
        ctx.cost_usd = prices.cost(ctx, model)
        event = CallEvent(ctx.spec, "success", None, 0.01, ctx)
        cost = per_call_us(functools.partial(prices.cost, ctx, model))
        counters = per_call_us(functools.partial(observer._spend, event))
        print(f"{name:9}  Prices.cost {cost:6.2f} µs   usage and cost counters {counters:6.2f} µs")
    usage = Usage(input_tokens=1200, output_tokens=300, cache_read_tokens=200)
    print(f"genai_prices.calc_price per call (for comparison) "
          f"{per_call_us(lambda: calc_price(usage, 'gpt-4o-mini', provider_id='openai'), 2000):6.1f} µs")


if __name__ == "__main__":
    main()
