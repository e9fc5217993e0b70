"""Service-level objectives: the multi-window, multi-burn-rate alerts of Google's SRE workbook, as
recording rules and as the in-app evaluator computes them, from one place.

Per provider operation, two SLIs over a window ``w``, from the raw metrics (so they hold on the
scrape and the OTLP paths alike: no ``job`` or ``instance`` is read):

* error ratio: failed / attempted calls, ``increase(provider_client_request_duration_seconds_count
  {outcome!="success"}[w])`` over all of them (``or attempted * 0``, so 0 is a value);
* slow ratio: ``1 - rate(..._bucket{le=T}[w]) / rate(..._bucket{le="+Inf"}[w])``, with ``T`` the
  provider's ``SLO_LATENCY_THRESHOLD``. ``le`` is matched as a regex of both spellings (the
  exporter's ``"5"`` and Prometheus 3's normalised ``"5.0"``).

A burn rate is a ratio over its error budget (``1 - objective``): 1 spends the budget exactly in
the period. The objectives are recorded per provider (``provider:slo_<signal>:objective``, from
``vector()``), so one rule serves providers with different objectives, joined ``on (provider)``.
An alert fires when both windows of a pair burn faster than the pair's factor; each severity is
one alert whose pairs are joined with ``or`` (the value is the long window's burn rate of the first
pair that holds). ``SLO_TIME_SCALE`` divides every window and the period, for tests.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

from ..config import SloSettings, format_duration
from . import recording as r
from .stats import WindowStats

Signal = Literal["availability", "latency"]
SIGNALS: Final[tuple[Signal, ...]] = ("availability", "latency")
WINDOWS: Final = (300.0, 1800.0, 3600.0, 7200.0, 21600.0, 86400.0, 259200.0)
"""Seconds, unscaled: 5m, 30m, 1h, 2h, 6h, 1d and 3d."""


@dataclass(frozen=True)
class Pair:
    """Both windows must burn faster than ``factor`` for the alert to hold (seconds, unscaled)."""

    long: float
    short: float
    factor: float


PAGE: Final = (Pair(3600.0, 300.0, 14.4), Pair(21600.0, 1800.0, 6.0))
"""``critical``: 2% of a 30-day budget in an hour, or 5% in six hours."""
TICKET: Final = (Pair(86400.0, 7200.0, 3.0), Pair(259200.0, 21600.0, 1.0))
"""``warning``: 10% of a 30-day budget in a day, or 10% in three days."""


def ratio_record(signal: Signal, window: str) -> str:
    metric = "error" if signal == "availability" else "slow"
    return f"provider_operation:provider_client_request_{metric}:ratio{window}"


def objective_record(signal: Signal) -> str:
    return f"provider:slo_{signal}:objective"


def burn_record(signal: Signal, window: str) -> str:
    return f"provider_operation:slo_{signal}:burnrate{window}"


def budget_record(signal: Signal) -> str:
    return f"provider_operation:slo_{signal}:budget_remaining"


@dataclass(frozen=True)
class Slo:
    """The objectives and the scaled windows of one configuration."""

    settings: SloSettings

    def scaled(self, seconds: float) -> float:
        return seconds / self.settings.time_scale

    @property
    def windows(self) -> tuple[float, ...]:
        return tuple(self.scaled(w) for w in WINDOWS)

    @property
    def period(self) -> float:
        return self.scaled(self.settings.period)

    def pairs(self, page: bool) -> tuple[Pair, ...]:
        return tuple(Pair(self.scaled(p.long), self.scaled(p.short), p.factor) for p in (PAGE if page else TICKET))

    def objective(self, signal: Signal, provider: str) -> float:
        objectives = self.settings.objectives(provider)
        return objectives.availability if signal == "availability" else objectives.latency

    # -- in-app: the same numbers from window statistics --------------------------------------

    def ratio(self, signal: Signal, provider: str, stats: WindowStats | None) -> float | None:
        """The SLI's bad ratio; None where Prometheus has no value (no calls: 0 / 0)."""
        if stats is None:
            return None
        if signal == "availability":
            if not stats.attempted:
                return None
            return (stats.attempted - stats.succeeded) / stats.attempted
        threshold = self.settings.objectives(provider).latency_threshold
        below = [count for bound, count in stats.buckets if bound == threshold]
        total = stats.buckets[-1][1] if stats.buckets else 0.0
        if not below or not total:
            return None
        return 1 - below[0] / total

    @staticmethod
    def calls(signal: Signal, stats: WindowStats) -> float:
        """The calls the signal's ratio counts: the attempted ones; for latency, the histogram's
        (``+Inf`` bucket), which is all the latency ratio reads."""
        if signal == "availability":
            return stats.attempted or 0.0
        return stats.buckets[-1][1] if stats.buckets else 0.0

    @staticmethod
    def calls_expr(signal: Signal, w: str) -> str:
        """:meth:`calls` in PromQL, over the window ``w``."""
        counted = f"{r.DURATION}_count" if signal == "availability" else f'{r.DURATION}_bucket{{le="+Inf"}}'
        return f"sum {r.BY} (increase({counted}[{w}]))"

    def burn_rate(self, signal: Signal, provider: str, stats: WindowStats | None) -> float | None:
        ratio = self.ratio(signal, provider, stats)
        return None if ratio is None else ratio / (1 - self.objective(signal, provider))

    def budget_remaining(self, signal: Signal, provider: str, stats: WindowStats | None) -> float | None:
        """Share of the error budget left: 1 - the burn rate over the period."""
        burn = self.burn_rate(signal, provider, stats)
        return None if burn is None else 1 - burn

    # -- the recording rules --------------------------------------------------------------------

    def recording_rules(self) -> tuple[r.RecordingRule, ...]:
        """Objectives, ratios and burn rates over every window, and the budget left over the period."""
        rules: list[r.RecordingRule] = []
        for signal in SIGNALS:
            rules.append(self.objective_rule(signal))
            for window in (*self.windows, self.period):
                rules.append(self.ratio_rule(signal, format_duration(window)))
            for window in self.windows:
                rules.append(self.burn_rule(signal, format_duration(window)))
            rules.append(self.budget_rule(signal))
        return tuple(rules)

    def objective_rule(self, signal: Signal) -> r.RecordingRule:
        terms = [f'label_replace(vector({r.num(self.objective(signal, p))}), "provider", "{p}", "", "")'
                 for p in self.settings.providers]
        return r.RecordingRule(objective_record(signal), " or ".join(terms))

    def ratio_rule(self, signal: Signal, w: str) -> r.RecordingRule:
        if signal == "availability":
            attempted = self.calls_expr(signal, w)
            failed = f'sum {r.BY} (increase({r.DURATION}_count{{outcome!="success"}}[{w}]))'
            return r.RecordingRule(ratio_record(signal, w), f"({failed} or {attempted} * 0) / {attempted}")
        total = f'sum {r.BY} (rate({r.DURATION}_bucket{{le="+Inf"}}[{w}]))'
        return r.RecordingRule(ratio_record(signal, w), f"1 - ({self._fast(w)}) / {total}")

    def _fast(self, w: str) -> str:
        """Calls at or under each provider's threshold, per second: one term per threshold."""
        by_threshold: dict[float, list[str]] = {}
        for provider, objectives in self.settings.providers.items():
            by_threshold.setdefault(objectives.latency_threshold, []).append(provider)
        default = self.settings.defaults.latency_threshold
        others = "|".join(p for t, ps in by_threshold.items() if t != default for p in ps)
        terms = []
        for threshold, providers in by_threshold.items():
            if not others:
                scope = ""
            elif threshold == default:
                scope = f'provider!~"{others}", '
            else:
                scope = f'provider=~"{"|".join(providers)}", '
            terms.append(f'sum {r.BY} (rate({r.DURATION}_bucket{{{scope}le=~"{le_regex(threshold)}"}}[{w}]))')
        return " or ".join(terms)

    def burn_rule(self, signal: Signal, w: str) -> r.RecordingRule:
        return r.RecordingRule(burn_record(signal, w), self._over_budget(ratio_record(signal, w), signal))

    def budget_rule(self, signal: Signal) -> r.RecordingRule:
        ratio = ratio_record(signal, format_duration(self.period))
        return r.RecordingRule(budget_record(signal), f"1 - {self._over_budget(ratio, signal)}")

    @staticmethod
    def _over_budget(ratio: str, signal: Signal) -> str:
        return f"{ratio} / on (provider) group_left () (1 - {objective_record(signal)})"

    def burn_expr(self, signal: Signal, page: bool, recorded: bool, min_requests: int) -> str:
        """The alert expression: each pair's long and short burn rates above its factor, with at
        least ``min_requests`` attempted calls over the long window, or'ed."""
        def burn(window: float) -> str:
            w = format_duration(window)
            if recorded:
                return burn_record(signal, w)
            objective = self.objective_rule(signal).expr
            ratio = self.ratio_rule(signal, w).expr
            return f"({ratio}) / on (provider) group_left () (1 - ({objective}))"

        pairs = [f"({burn(p.long)} > {r.num(p.factor)} and {r.ON} {burn(p.short)} > {r.num(p.factor)}"
                 f" and {r.ON} {self.calls_expr(signal, format_duration(p.long))} >= {min_requests})"
                 for p in self.pairs(page)]
        return " or ".join(pairs)


def le_regex(threshold: float) -> str:
    """A PromQL string's text matching both spellings of a bound: ``5|5\\\\.0``, ``0\\\\.25``."""
    spellings = sorted({f"{threshold:g}", repr(float(threshold))})
    return "|".join(re.escape(s).replace("\\", "\\\\") for s in spellings)
