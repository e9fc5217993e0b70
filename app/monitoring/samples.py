"""Scraped samples as an evaluator input, for parity with Prometheus on recorded series.

A :class:`SampleSource` holds counter and gauge samples the way Prometheus stores them (for
instance promtool's ``input_series``) and answers the alert conditions' inputs the way the
rendered rules compute them: ``increase()`` with Prometheus's extrapolation, summed by provider
and operation; series with fewer than two samples in the window drop out; a group without any
series is absent; ``gateway_state_backend_up`` is read as an instant vector, its lowest value per
``backend``; ``provider_client_active_requests`` and ``provider_client_concurrency_limit`` are read
as instant vectors and divided per target; the event-loop lag buckets are ``rate()``s summed by
``instance`` and ``le``; ``provider_spend_usd`` is read as an instant vector, its highest value per
``provider`` and ``period``. So ``Evaluator(rules, SampleSource.from_promtool(...))`` fires exactly when
``promtool test rules`` says the rendered rules fire.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from .promql import Sample, extrapolated_increase, extrapolated_rate
from .recording import ACTIVE_REQUESTS, CONCURRENCY_LIMIT, COST, DURATION, LOOP_LAG, SPEND, STATE_BACKEND_UP
from .stats import Key, WindowStats

K = TypeVar("K")
LOOKBACK = 300.0
"""Seconds an instant selector looks back for a sample (Prometheus's default lookback delta)."""

_SERIES = re.compile(r"^\s*([A-Za-z_:][A-Za-z0-9_:]*)?\s*(?:\{(.*)\})?\s*$")
_LABEL = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?Inf|NaN"
_EXPANDING = re.compile(rf"^(?P<a>{_NUMBER})(?:(?P<op>[+-])(?P<b>\d+\.?\d*(?:[eE][-+]?\d+)?))?x(?P<n>\d+)$")


@dataclass
class _Series:
    metric: str
    labels: dict[str, str]
    samples: list[Sample] = field(default_factory=list)


def parse_series(selector: str) -> tuple[str, dict[str, str]]:
    """``metric{label="value", ...}`` as promtool's ``series`` field writes it."""
    match = _SERIES.match(selector)
    if not match:
        raise ValueError(f"not a series: {selector!r}")
    labels = {name: value.encode().decode("unicode_escape")
              for name, value in _LABEL.findall(match.group(2) or "")}
    metric = match.group(1) or labels.pop("__name__", "")
    if not metric:
        raise ValueError(f"series without a metric name: {selector!r}")
    return metric, labels


def expand_values(values: str) -> list[float | None]:
    """promtool's ``values`` notation: ``a+bxn``, ``a-bxn``, ``axn`` (n+1 values), ``_`` and
    ``_xn`` (omitted samples: None), ``stale`` (NaN, a staleness marker)."""
    expanded: list[float | None] = []
    for token in values.split():
        if token == "_":
            expanded.append(None)
        elif token.startswith("_x"):
            expanded.extend([None] * int(token[2:]))
        elif token == "stale":
            expanded.append(math.nan)
        elif match := _EXPANDING.match(token):
            start = float(match.group("a"))
            delta = float(match.group("b") or 0) * (-1 if match.group("op") == "-" else 1)
            expanded.extend(start + i * delta for i in range(int(match.group("n")) + 1))
        else:
            expanded.append(float(token))
    return expanded


class SampleSource:
    """Samples by series; NaN samples are staleness markers."""

    def __init__(self, lookback: float = LOOKBACK) -> None:
        self.lookback = lookback
        self._series: list[_Series] = []

    def add(self, metric: str, labels: Mapping[str, str], samples: Iterable[Sample]) -> None:
        self._series.append(_Series(metric, dict(labels), sorted(samples)))

    @classmethod
    def from_promtool(cls, input_series: Iterable[Mapping[str, str]], interval: float) -> SampleSource:
        """From a promtool test's ``input_series`` (``series`` and ``values``), sampled every
        ``interval`` seconds from time 0."""
        source = cls()
        for entry in input_series:
            metric, labels = parse_series(entry["series"])
            values = expand_values(entry["values"])
            source.add(metric, labels, [(i * interval, v) for i, v in enumerate(values) if v is not None])
        return source

    def window_stats(self, now: float, window: float) -> dict[Key, WindowStats]:
        start = now - window
        attempted: dict[Key, float] = {}
        succeeded: dict[Key, float] = {}
        buckets: dict[Key, dict[float, float]] = {}
        state: dict[Key, float] = {}
        openings: dict[Key, float] = {}
        rate_limited: dict[Key, float] = {}
        overloaded: dict[Key, float] = {}
        cost: dict[Key, float] = {}
        for series in self._series:
            if "provider" not in series.labels or "operation" not in series.labels:
                continue
            key = (series.labels["provider"], series.labels["operation"])
            if series.metric == "provider_circuit_state":
                value = self._instant(series.samples, now)
                if value is not None:
                    state[key] = max(state.get(key, -math.inf), value)
                continue
            fresh = [s for s in series.samples if not math.isnan(s[1])]
            if series.metric == f"{DURATION}_bucket" and "le" in series.labels:
                rate = extrapolated_rate(fresh, start, now)
                if rate is not None:
                    _add(buckets.setdefault(key, {}), float(series.labels["le"]), rate)
                continue
            increase = extrapolated_increase(fresh, start, now)
            if increase is None:
                continue
            if series.metric == f"{DURATION}_count":
                _add(attempted, key, increase)
                if series.labels.get("outcome") == "success":
                    _add(succeeded, key, increase)
            elif series.metric == COST:
                _add(cost, key, increase)
            elif series.metric == "provider_circuit_opened_total":
                _add(openings, key, increase)
            elif series.metric == "provider_client_rejections_total":
                reason = series.labels.get("reason")
                if reason == "rate_limited":
                    _add(rate_limited, key, increase)
                elif reason == "overloaded":
                    _add(overloaded, key, increase)
        keys = (set(attempted) | set(buckets) | set(state) | set(openings) | set(rate_limited) | set(overloaded)
                | set(cost))
        return {key: WindowStats(
            attempted=attempted.get(key),
            succeeded=succeeded.get(key, 0.0),
            buckets=tuple(sorted(buckets.get(key, {}).items())),
            circuit_state=int(state[key]) if key in state else None,
            circuit_openings=openings.get(key),
            rate_limited=rate_limited.get(key),
            overloaded=overloaded.get(key),
            cost_usd=cost.get(key),
        ) for key in keys}

    def state_backends(self, now: float) -> dict[str, float]:
        """``min by (backend) (gateway_state_backend_up)`` at ``now``."""
        lowest: dict[str, float] = {}
        for series in self._series:
            if series.metric != STATE_BACKEND_UP:
                continue
            value = self._instant(series.samples, now)
            if value is not None:
                backend = series.labels.get("backend", "")
                lowest[backend] = min(lowest.get(backend, math.inf), value)
        return lowest

    def spend_to_date(self, now: float) -> dict[tuple[str, str], float]:
        """``max by (provider) (provider_spend_usd{period=...})`` at ``now``, per period."""
        highest: dict[tuple[str, str], float] = {}
        for series in self._series:
            if series.metric != SPEND:
                continue
            value = self._instant(series.samples, now)
            key = (series.labels.get("provider", ""), series.labels.get("period", ""))
            if value is not None and value > highest.get(key, -math.inf):
                highest[key] = value
        return highest

    def saturation(self, now: float) -> dict[str, float]:
        """``max by (provider) (sum without (operation) (active) / limit)`` at ``now``: the division
        pairs series whose labels are equal once the name (and ``operation``) are gone, i.e. one
        replica's in-flight calls with its own limit. A NaN (0 / 0) is no value."""
        in_flight: dict[frozenset[tuple[str, str]], float] = {}
        limits: dict[frozenset[tuple[str, str]], float] = {}
        for series in self._series:
            if series.metric not in (ACTIVE_REQUESTS, CONCURRENCY_LIMIT):
                continue
            value = self._instant(series.samples, now)
            if value is None:
                continue
            if series.metric == ACTIVE_REQUESTS:
                target = frozenset((k, v) for k, v in series.labels.items() if k != "operation")
                _add(in_flight, target, value)
            else:
                limits[frozenset(series.labels.items())] = value
        highest: dict[str, float] = {}
        for target, active in in_flight.items():
            if target not in limits:
                continue
            share = _divide(active, limits[target])
            provider = dict(target).get("provider", "")
            if not math.isnan(share) and share > highest.get(provider, -math.inf):
                highest[provider] = share
        return highest

    def loop_lag(self, now: float, window: float) -> dict[str, tuple[tuple[float, float], ...]]:
        """``sum by (instance, le) (rate(gateway_event_loop_lag_seconds_bucket[w]))`` at ``now``."""
        rates: dict[str, dict[float, float]] = {}
        for series in self._series:
            if series.metric != f"{LOOP_LAG}_bucket" or "le" not in series.labels:
                continue
            fresh = [s for s in series.samples if not math.isnan(s[1])]
            rate = extrapolated_rate(fresh, now - window, now)
            if rate is not None:
                _add(rates.setdefault(series.labels.get("instance", ""), {}), float(series.labels["le"]), rate)
        return {instance: tuple(sorted(by_le.items())) for instance, by_le in rates.items()}

    def _instant(self, samples: list[Sample], now: float) -> float | None:
        """The latest sample in ``(now - lookback, now]`` (left-open, as in Prometheus 3), unless it
        is a staleness marker."""
        latest = None
        for t, value in samples:
            if t > now:
                break
            if t > now - self.lookback:
                latest = value
        return None if latest is None or math.isnan(latest) else latest


def _divide(a: float, b: float) -> float:
    """IEEE division as PromQL does it: ``x / 0`` is ``±Inf``, ``0 / 0`` NaN."""
    if b == 0:
        return math.nan if a == 0 or math.isnan(a) else math.copysign(math.inf, a)
    return a / b


def _add(totals: dict[K, float], key: K, value: float) -> None:
    totals[key] = totals.get(key, 0.0) + value
