"""One condition class per alert kind, in one registry (:data:`CONDITIONS`) that the rule renderer
and the in-app evaluator share.

A condition knows, for its kind: the labels that tell its alerts apart, its comparison, its
canonical PromQL (recorded or with the recording rules inlined), Grafana's threshold step, and how
the in-app evaluator computes the values that hold from a :class:`~app.monitoring.stats.WindowSource`.
So adding an alert kind is one class here and its rules in :func:`app.monitoring.rules.alert_rules`.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import ClassVar, Final, Literal, Protocol

from ..config import SpendBudget, format_duration
from . import recording as r
from .promql import bucket_quantile
from .slo import Signal, Slo, budget_record
from .stats import Key, WindowSource, WindowStats

Kind = Literal[
    "success_rate", "latency_p95", "circuit_open", "rate_limited", "state_backend_down", "saturated",
    "event_loop_lag", "error_budget_burn", "latency_budget_burn", "spend_budget_burn",
]
AlertKey = tuple[str, ...]
"""The values of a rule's :attr:`~app.monitoring.rules.AlertRule.by` labels: ``(provider, operation)``,
``(backend,)``, ``(provider,)`` or ``(instance,)``."""

LABELS: Final = ("provider", "operation")
"""The labels every provider alert carries besides ``alertname`` and ``severity``."""
STATE_LABELS: Final = ("backend",)
"""The labels of the state backend alert besides ``alertname`` and ``severity``."""
SATURATION_LABELS: Final = ("provider",)
"""The labels of ``ProviderSaturated`` besides ``alertname`` and ``severity``."""
INSTANCE_LABELS: Final = ("instance",)
"""The labels of ``GatewayEventLoopLagHigh`` besides ``alertname`` and ``severity``: one alert per replica."""


class Rule(Protocol):
    """What a condition reads of its rule (an :class:`~app.monitoring.rules.AlertRule`)."""

    @property
    def threshold(self) -> float: ...

    @property
    def window(self) -> float: ...

    @property
    def min_requests(self) -> int: ...

    @property
    def slo(self) -> Slo | None:
        """The objectives and windows of the budget-burn rules; None for the others."""
        ...

    @property
    def page(self) -> bool:
        """Whether a budget-burn rule watches the page pairs (else the ticket pairs)."""
        ...

    @property
    def spend(self) -> Mapping[str, SpendBudget]:
        """The spend budgets ``ProviderBudgetBurn`` watches, per provider; empty for the others."""
        ...


class Reading:
    """What one evaluation at ``now`` reads from its source; each window's stats are read once."""

    def __init__(self, source: WindowSource, now: float) -> None:
        self.source = source
        self.now = now
        self._by_window: dict[float, Mapping[Key, WindowStats]] = {}

    def window_stats(self, window: float) -> Mapping[Key, WindowStats]:
        if window not in self._by_window:
            self._by_window[window] = self.source.window_stats(self.now, window)
        return self._by_window[window]


class Condition(ABC):
    """One alert kind. Its comparison is ``> threshold`` unless the class says otherwise."""

    kind: ClassVar[Kind]
    by: ClassVar[tuple[str, ...]] = LABELS
    """The labels that tell its alerts apart (the expression's ``by``), besides ``alertname`` and
    ``severity``."""

    def breached(self, value: float, threshold: float) -> bool:
        """Whether ``value`` (the expression's value before the comparison) meets the condition."""
        return value > threshold

    @abstractmethod
    def promql(self, rule: Rule, recorded: bool) -> str:
        """The canonical alert expression; with ``recorded=False`` the recording rules are
        inlined, for engines that do not load them."""

    def grafana_threshold(self, threshold: float) -> tuple[str, float]:
        """Grafana's threshold step (``gt``, ``lt`` or ranges, no equality) over the query's value:
        the query applies the rule's comparison already; the step repeats it."""
        return "gt", threshold

    @abstractmethod
    def holding(self, rule: Rule, reading: Reading) -> dict[AlertKey, float]:
        """The value of each key whose condition holds now."""

    def queries(self, rule: Rule, reading: Reading, key: AlertKey) -> dict[str, float]:
        """The values of the series the rule's annotations query (``query`` in a template), by
        metric name, for the alert of ``key``; absent where Prometheus's query is empty."""
        return {}


def _ref(rule: r.RecordingRule, recorded: bool) -> str:
    return rule.record if recorded else f"({rule.expr})"


def _window(rule: Rule) -> str:
    return format_duration(rule.window)


class _PerOperation(Condition):
    """A condition per provider operation over the rule's window."""

    def holding(self, rule: Rule, reading: Reading) -> dict[AlertKey, float]:
        return {key: value for key, s in reading.window_stats(rule.window).items()
                if (value := self.value(rule, s)) is not None}

    def value(self, rule: Rule, stats: WindowStats) -> float | None:
        """The expression's value when the condition holds for ``stats``, else None."""
        found = self.measure(rule, stats)
        return found if found is not None and self.breached(found, rule.threshold) else None

    @abstractmethod
    def measure(self, rule: Rule, stats: WindowStats) -> float | None:
        """The expression's value before the comparison; None where Prometheus has no value."""

    @staticmethod
    def _gate(rule: Rule, recorded: bool) -> str:
        """``attempted >= min_requests``, for the rate and latency conditions."""
        return f"{_ref(r.attempted(_window(rule)), recorded)} >= {rule.min_requests}"

    @staticmethod
    def _attempted(rule: Rule, stats: WindowStats) -> float | None:
        """The attempted calls when the window holds enough of them (and any), else None."""
        attempted = stats.attempted
        if attempted is None or attempted < rule.min_requests or attempted <= 0:
            return None
        return attempted


class SuccessRate(_PerOperation):
    """``ProviderSuccessRateLow``: successful / attempted calls below the threshold."""

    kind = "success_rate"

    def breached(self, value: float, threshold: float) -> bool:
        return value < threshold

    def promql(self, rule: Rule, recorded: bool) -> str:
        w = _window(rule)
        ratio = r.success_ratio(w) if recorded else r.success_ratio(w, _ref(r.attempted(w), recorded))
        return f"{_ref(ratio, recorded)} < {r.num(rule.threshold)} and {r.ON} {self._gate(rule, recorded)}"

    def grafana_threshold(self, threshold: float) -> tuple[str, float]:
        return "lt", threshold

    def measure(self, rule: Rule, stats: WindowStats) -> float | None:
        attempted = self._attempted(rule, stats)
        return None if attempted is None else stats.succeeded / attempted


class LatencyP95(_PerOperation):
    """``ProviderLatencyHigh``: the p95 latency of attempted calls above the threshold."""

    kind = "latency_p95"

    def promql(self, rule: Rule, recorded: bool) -> str:
        p95 = _ref(r.p95(_window(rule)), recorded)
        return f"{p95} > {r.num(rule.threshold)} and {r.ON} {self._gate(rule, recorded)}"

    def measure(self, rule: Rule, stats: WindowStats) -> float | None:
        if self._attempted(rule, stats) is None:
            return None
        value = bucket_quantile(0.95, stats.buckets)
        return None if math.isnan(value) else value


class CircuitOpen(_PerOperation):
    """``ProviderCircuitOpen``: the breaker is open now (value 2), or opened during the window."""

    kind = "circuit_open"

    def promql(self, rule: Rule, recorded: bool) -> str:
        return f"max {r.BY} (provider_circuit_state) == 2 or {_ref(r.opened(_window(rule)), recorded)} > 0"

    def value(self, rule: Rule, stats: WindowStats) -> float | None:
        if stats.circuit_state == 2:
            return 2.0
        return super().value(rule, stats)

    def measure(self, rule: Rule, stats: WindowStats) -> float | None:
        return stats.circuit_openings


class RateLimited(_PerOperation):
    """``ProviderRateLimited``: any call refused by the gateway's rate limit in the window."""

    kind = "rate_limited"

    def promql(self, rule: Rule, recorded: bool) -> str:
        return f"{r.rejected('rate_limited', _window(rule), r.BY, recorded)} > 0"

    def measure(self, rule: Rule, stats: WindowStats) -> float | None:
        return stats.rate_limited


class StateBackendDown(Condition):
    """``GatewayStateBackendDown``, per ``backend``: ``gateway_state_backend_up`` of some replica
    equals the threshold (0) now."""

    kind = "state_backend_down"
    by = STATE_LABELS

    def breached(self, value: float, threshold: float) -> bool:
        return value == threshold

    def promql(self, rule: Rule, recorded: bool) -> str:
        return f"min by ({', '.join(self.by)}) ({r.STATE_BACKEND_UP}) == {r.num(rule.threshold)}"

    def grafana_threshold(self, threshold: float) -> tuple[str, float]:
        """``== 0`` of a gauge that is 0 or 1 is ``< 1``."""
        return "lt", threshold + 1

    def holding(self, rule: Rule, reading: Reading) -> dict[AlertKey, float]:
        return {(backend,): up for backend, up in reading.source.state_backends(reading.now).items()
                if self.breached(up, rule.threshold)}


class Saturated(Condition):
    """``ProviderSaturated``, per ``provider``: calls refused as ``overloaded`` in the window (``> 0``),
    or in some replica the calls in flight at the threshold share of its limit or more (``>=``)."""

    kind = "saturated"
    by = SATURATION_LABELS

    def breached(self, value: float, threshold: float) -> bool:
        return value >= threshold

    def promql(self, rule: Rule, recorded: bool) -> str:
        overloaded = r.rejected("overloaded", _window(rule), "by (provider)", recorded)
        return f"{overloaded} > 0 or {r.saturation()} >= {r.num(rule.threshold)}"

    def grafana_threshold(self, threshold: float) -> tuple[str, float]:
        """The value is a count of refusals or a share of the limit (PromQL's ``or``), both above
        0 when it holds: ``> 0``."""
        return "gt", 0.0

    def holding(self, rule: Rule, reading: Reading) -> dict[AlertKey, float]:
        """Refusals summed over the provider's operations (absent when no operation has the
        series, as ``sum by (provider)``), or its in-flight share now."""
        overloaded: dict[str, float] = {}
        for (provider, _), s in reading.window_stats(rule.window).items():
            if s.overloaded is not None:
                overloaded[provider] = overloaded.get(provider, 0.0) + s.overloaded
        shares = reading.source.saturation(reading.now)
        return {(provider,): value for provider in overloaded.keys() | shares.keys()
                if (value := self.value(rule, overloaded.get(provider), shares.get(provider))) is not None}

    def value(self, rule: Rule, overloaded: float | None, in_flight_share: float | None) -> float | None:
        """Like PromQL's ``or``, the left side (refusals as overloaded, ``> 0``) wins when both
        hold, else the in-flight share of the limit."""
        if overloaded is not None and overloaded > 0:
            return overloaded
        if in_flight_share is not None and self.breached(in_flight_share, rule.threshold):
            return in_flight_share
        return None


class EventLoopLag(Condition):
    """``GatewayEventLoopLagHigh``, per ``instance``: the p99 of the replica's event-loop lag over
    the window above the threshold (NaN without observations never holds)."""

    kind = "event_loop_lag"
    by = INSTANCE_LABELS

    def promql(self, rule: Rule, recorded: bool) -> str:
        return f"{_ref(r.loop_lag_p99(_window(rule)), recorded)} > {r.num(rule.threshold)}"

    def holding(self, rule: Rule, reading: Reading) -> dict[AlertKey, float]:
        found: dict[AlertKey, float] = {}
        for instance, buckets in reading.source.loop_lag(reading.now, rule.window).items():
            value = bucket_quantile(0.99, buckets)
            if not math.isnan(value) and self.breached(value, rule.threshold):
                found[(instance,)] = value
        return found


class _BudgetBurn(Condition):
    """``ProviderErrorBudgetBurn`` and ``ProviderLatencyBudgetBurn``: in some pair of windows
    (:mod:`app.monitoring.slo`), both burn the signal's error budget faster than the pair's factor;
    the value is the long window's burn rate of the first pair that holds (PromQL's ``or``)."""

    signal: ClassVar[Signal]

    def promql(self, rule: Rule, recorded: bool) -> str:
        return _slo(rule).burn_expr(self.signal, rule.page, recorded, rule.min_requests)

    def holding(self, rule: Rule, reading: Reading) -> dict[AlertKey, float]:
        slo = _slo(rule)
        found: dict[AlertKey, float] = {}
        for pair in slo.pairs(rule.page):
            short = reading.window_stats(pair.short)
            for key, stats in reading.window_stats(pair.long).items():
                if key in found or slo.calls(self.signal, stats) < rule.min_requests:
                    continue
                long_burn = slo.burn_rate(self.signal, key[0], stats)
                short_burn = slo.burn_rate(self.signal, key[0], short.get(key))
                if long_burn is not None and short_burn is not None and min(long_burn, short_burn) > pair.factor:
                    found[key] = long_burn
        return found

    def queries(self, rule: Rule, reading: Reading, key: AlertKey) -> dict[str, float]:
        """The error budget left over the period (``budget_remaining``) of the alert's operation."""
        slo = _slo(rule)
        stats = reading.window_stats(slo.period).get((key[0], key[1]))
        left = slo.budget_remaining(self.signal, key[0], stats)
        return {} if left is None else {budget_record(self.signal): left}


class ErrorBudgetBurn(_BudgetBurn):
    kind = "error_budget_burn"
    signal = "availability"


class LatencyBudgetBurn(_BudgetBurn):
    kind = "latency_budget_burn"
    signal = "latency"


DAY: Final = 86400.0
"""Seconds, unscaled: the daily budget's window, and the monthly projection's rate window."""
HOUR: Final = 3600.0
"""Seconds, unscaled: the rate window of the daily budget's projection."""
MONTH: Final = 30 * 86400.0
"""Seconds, unscaled: the month a monthly budget covers."""


class SpendBudgetBurn(Condition):
    """``ProviderBudgetBurn``, per ``provider`` with a budget, from ``provider_client_cost_usd_total``
    summed over its operations, models and clients, and from ``provider_spend_usd``. The value is a
    share of a budget:

    * critical (``page``): the spend over the last day is the daily budget or more, or the spend this
      UTC month (the gauge, the highest over replicas) is the monthly budget or more;
    * warning: the spend rate over the last hour, kept for a day, would spend the daily budget, or
      the spend rate over the last day, kept for 30 days, would spend the monthly budget.

    Both compare the share with the rule's threshold (1) by ``>=``.

    Each provider's terms are joined with ``or`` in that order (the first that holds gives the
    value). Every window and projected period is divided by ``SLO_TIME_SCALE``, for tests; the
    calendar month is the gauge's."""

    kind = "spend_budget_burn"
    by = SATURATION_LABELS

    def breached(self, value: float, threshold: float) -> bool:
        return value >= threshold

    def terms(self, rule: Rule) -> list[tuple[str, str, float, float, float]]:
        """``(provider, function, window, multiplier, budget)`` per term, in the expression's order:
        the value is ``function(cost[window]) * multiplier / budget``, or for the function
        ``month`` (no window) the month's spend (the gauge) ``/ budget``."""
        scale = _slo(rule).settings.time_scale
        found: list[tuple[str, str, float, float, float]] = []
        for provider, budget in rule.spend.items():
            if rule.page and budget.daily is not None:
                found.append((provider, "increase", DAY / scale, 1.0, budget.daily))
            if rule.page and budget.monthly is not None:
                found.append((provider, "month", 0.0, 1.0, budget.monthly))
            if not rule.page and budget.daily is not None:
                found.append((provider, "rate", HOUR / scale, DAY / scale, budget.daily))
            if not rule.page and budget.monthly is not None:
                found.append((provider, "rate", DAY / scale, MONTH / scale, budget.monthly))
        return found

    def promql(self, rule: Rule, recorded: bool) -> str:
        parts = []
        for provider, function, window, multiplier, budget in self.terms(rule):
            selector = f'{{provider="{provider}"'
            spent = (f'max by (provider) ({r.SPEND}{selector},period="month"}})' if function == "month"
                     else f"sum by (provider) ({function}({r.COST}{selector}}}[{format_duration(window)}]))")
            scaled = spent if multiplier == 1 else f"{spent} * {r.num(multiplier)}"
            parts.append(f"{scaled} / {r.num(budget)} >= {r.num(rule.threshold)}")
        return " or ".join(parts) if parts else "vector(0) > 1"

    def grafana_threshold(self, threshold: float) -> tuple[str, float]:
        """Every term applies its comparison already; a holding value is at least 1: ``> 0``."""
        return "gt", 0.0

    def holding(self, rule: Rule, reading: Reading) -> dict[AlertKey, float]:
        found: dict[AlertKey, float] = {}
        for provider, function, window, multiplier, budget in self.terms(rule):
            if (provider,) in found:
                continue
            if function == "month":
                month = reading.source.spend_to_date(reading.now).get((provider, "month"))
                if month is not None and self.breached(month / budget, rule.threshold):
                    found[(provider,)] = month / budget
                continue
            costs = [s.cost_usd for (p, _), s in reading.window_stats(window).items()
                     if p == provider and s.cost_usd is not None]
            if not costs:
                continue
            spent = sum(costs) / window if function == "rate" else sum(costs)
            value = spent * multiplier / budget
            if self.breached(value, rule.threshold):
                found[(provider,)] = value
        return found


def _slo(rule: Rule) -> Slo:
    assert rule.slo is not None, "a budget-burn rule carries its objectives"
    return rule.slo


CONDITIONS: Final[Mapping[Kind, Condition]] = {
    c.kind: c for c in (SuccessRate(), LatencyP95(), CircuitOpen(), RateLimited(), StateBackendDown(),
                        Saturated(), EventLoopLag(), ErrorBudgetBurn(), LatencyBudgetBurn(),
                        SpendBudgetBurn())
}
"""Every alert kind's condition, by kind: the one registry the renderer and the evaluator read."""
