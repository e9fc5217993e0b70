"""The single source of alert rules: thresholds, windows and the canonical PromQL.

The Prometheus and Grafana rule files under ``alerts/`` are rendered from :func:`alert_rules`
and :func:`recording_rules`; the in-app evaluator (:mod:`app.monitoring.evaluator`) applies the
same rules to the in-app recorder. Both engines compute, per ``provider`` and ``operation``:

* attempted calls: ``increase(provider_client_request_duration_seconds_count[w])`` summed over
  ``outcome`` and ``error_type``. Only calls that reached the provider are observed in that
  histogram; rejections by our breaker, limiter or validation go to
  ``provider_client_rejections_total`` and active health checks to neither.
* success rate: successful attempts / attempted. The numerator falls back to ``attempted * 0`` so
  that 0% (no ``outcome="success"`` series at all) is a value rather than absent data.
* p95: ``histogram_quantile(0.95, ...)`` over the summed bucket rates: linear within the bucket,
  the lowest bucket interpolates from 0, a quantile in ``+Inf`` answers the highest finite bound.
  The rate and latency alerts need ``attempted >= min_requests``.
* circuit open: ``provider_circuit_state == 2`` now, or ``increase(provider_circuit_opened_total[w])
  > 0``; rate limited: ``increase(provider_client_rejections_total{reason="rate_limited"}[w]) > 0``.

Two rules per severity watch error budgets instead of fixed thresholds: ``ProviderErrorBudgetBurn``
and ``ProviderLatencyBudgetBurn``, the multi-window, multi-burn-rate alerts of
:mod:`app.monitoring.slo` (objectives from ``SLO_*``, recording rules of their own, ``for`` 0, at
least ``min_requests`` attempted calls over a pair's long window, so that one failed call with no
other traffic does not page, an annotation ``budget_left`` that queries the recorded budget left).

One rule is about the gateway rather than a provider operation: ``GatewayStateBackendDown``, per
``backend`` (``redis`` or ``memory``), fires while ``min by (backend) (gateway_state_backend_up) ==
0``: some replica's shared state store (``STATE_REDIS_URL``) does not answer, so that replica
serves with its own rate limits and breakers. ``min`` removes ``job`` and ``instance``, and a
backend without a current sample is absent, which never fires. Its alerts carry ``backend`` and
``severity``, no ``provider`` or ``operation``.

Two rules tell a saturated gateway from a slow provider:

* ``ProviderSaturated``, per ``provider``: ``sum by (provider) (increase(
  provider_client_rejections_total{reason="overloaded"}[w])) > 0 or max by (provider) (sum without
  (operation) (provider_client_active_requests) / provider_client_concurrency_limit) >= 0.8``. The
  bulkhead refused a call in the window, or in some replica the calls in flight (all operations)
  reach ``saturation_ratio`` of that replica's limit now. Both gauges carry the same target labels
  (``job``, ``instance``), so the division pairs each replica with its own limit; ``max`` and
  ``sum`` then drop them. The alert's value is whichever branch holds, and the refusals when both
  do (PromQL's ``or`` keeps its left side's element). A provider without either series is absent.
* ``GatewayEventLoopLagHigh``, per ``instance``: ``histogram_quantile(0.99, sum by (instance, le)
  (rate(gateway_event_loop_lag_seconds_bucket[w]))) > event_loop_lag_warning``, one alert per
  replica. ``le`` is never selected and never in a result: Prometheus 3 spells a scraped bound
  ``"5.0"`` and an OTLP one ``"5"``, and ``histogram_quantile`` reads both as the number. A histogram
  without observations in the window gives NaN, which never fires. ``instance`` is the scrape
  address on the scrape path and ``service.instance.id`` on the OTLP path; in-app it is the
  recorder's :attr:`~app.monitoring.recorder.Recorder.instance` (the host name).

Extrapolation. Prometheus's ``increase()``/``rate()`` see only stored samples (scraped, or
received over OTLP at each export): they take the difference between the first and last sample
inside ``(t - w, t]`` (left-open in Prometheus 3, the version promtool and the stack tests run),
add counter resets, and extrapolate that difference towards the window's edges (by the gap to the
edge when it is under 1.1 average sample intervals, else by half an interval; towards the start
never below the counter's extrapolated zero). So ``increase()`` of an exact count of 10 calls can
be 10.7, and a series that appears mid-window contributes nothing for its first sample. The in-app
recorder counts exactly.
How the two agree:

* ratios and quantiles are invariant to an extrapolation factor shared by numerator and
  denominator (series scraped together), so success rate, p95 and the lag p99 agree;
* ``> 0`` tests agree as long as every counter series exists at 0 before its first event (the
  telemetry module initialises them), otherwise Prometheus misses a series' first increment;
* the ``min_requests`` gate compares an extrapolated count in Prometheus, an exact one in-app:
  they can disagree only when the count is within one extrapolation step of the minimum.

For exact parity on recorded inputs (promtool's ``input_series``), the evaluator also accepts
samples (:class:`app.monitoring.samples.SampleSource`) and then computes ``increase()`` and
``rate()`` with Prometheus 3's extrapolation and floating-point order (:mod:`app.monitoring.promql`),
so the same input series give the same alerts, values and annotations in both engines.

Runbook links are ``alerts/RUNBOOK.md#<alertname lowercased>`` joined to a base URL: ``""`` by
default (repository-relative links, which Grafana and Markdown viewers of the repository resolve),
or e.g. ``https://github.com/acme/ai-gateway/blob/main/`` for absolute links in notifications.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from ..config import AlertSettings, SpendBudget, format_duration
from . import recording as r
from .conditions import CONDITIONS, DAY, HOUR, MONTH, Condition, Kind
from .slo import Signal, Slo, budget_record

Severity = Literal["warning", "critical"]

DEFAULT_RUNBOOK_BASE_URL = ""
RUNBOOK_PATH = "alerts/RUNBOOK.md"
_TARGET = "{{ $labels.provider }}.{{ $labels.operation }}"


def recording_rules(alerts: AlertSettings) -> tuple[r.RecordingRule, ...]:
    """The recording rules the alert expressions use, in dependency order (one rule group)."""
    w = format_duration(alerts.window)
    return (r.attempted(w), r.success_ratio(w), r.p95(w), r.opened(w), r.rejections(w), r.loop_lag_p99(w),
            *Slo(alerts.slo).recording_rules())


@dataclass(frozen=True)
class AlertRule:
    """One alert of DESIGN.md's table at one severity, or the state backend alert."""

    name: str
    severity: Severity
    kind: Kind
    threshold: float
    """Success ratio (below fires), p95 or p99 seconds (above fires), 0 for the ``> 0`` tests, the
    ``up`` value that fires for the state backend (``== 0``), or the share of the concurrency limit
    in flight that fires ``ProviderSaturated`` (``>=``; its other branch is ``> 0``)."""
    window: float
    """Seconds of history the condition looks at (the state backend rule reads the gauge now)."""
    for_: float
    """Seconds the condition must hold before the alert fires."""
    min_requests: int
    """Attempted calls the window must hold; 0 for the alerts that are not gated."""
    summary: str
    description: str
    """A Prometheus template over ``$labels`` (the labels of :attr:`by`) and ``$value``."""
    runbook_url: str
    slo: Slo | None = None
    """The objectives and windows of the budget-burn rules; None for the others."""
    page: bool = False
    """Whether a budget-burn rule watches the page pairs (critical), else the ticket pairs."""
    budget_left: str | None = None
    """The ``budget_left`` annotation of the budget-burn rules: a template that queries the recorded
    budget left (Grafana's templates cannot query, so its rules go without)."""
    spend: Mapping[str, SpendBudget] = field(default_factory=dict)
    """The spend budgets per provider that ``ProviderBudgetBurn`` watches; empty for the others."""

    @property
    def condition(self) -> Condition:
        """How its kind decides, from the registry the renderer and the evaluator share."""
        return CONDITIONS[self.kind]

    @property
    def by(self) -> tuple[str, ...]:
        """The labels that tell its alerts apart (the expression's ``by``), besides ``alertname`` and
        ``severity``."""
        return self.condition.by

    @property
    def labels(self) -> dict[str, str]:
        """Static labels the rule adds to its alerts."""
        return {"severity": self.severity}

    def breached(self, value: float) -> bool:
        """Whether ``value`` (the expression's value before the comparison) meets the condition."""
        return self.condition.breached(value, self.threshold)

    def promql(self, recorded: bool = True) -> str:
        """The canonical alert expression; with ``recorded=False`` the recording rules are
        inlined, for engines that do not load them."""
        return self.condition.promql(self, recorded)


def alert_rules(alerts: AlertSettings, runbook_base_url: str = DEFAULT_RUNBOOK_BASE_URL) -> tuple[AlertRule, ...]:
    """The rules of DESIGN.md's alert table with the configured thresholds and timing: six per
    provider operation, then the state backend, saturation and event-loop lag rules."""
    w = format_duration(alerts.window)

    def runbook(name: str) -> str:
        return f"{runbook_base_url}{RUNBOOK_PATH}#{name.lower()}"

    def success(severity: Severity, threshold: float) -> AlertRule:
        return AlertRule(
            "ProviderSuccessRateLow", severity, "success_rate", threshold, alerts.window, alerts.for_,
            alerts.min_requests,
            summary=f"Provider success rate below {threshold:.0%}",
            description=f"{_TARGET}: {{{{ $value | humanizePercentage }}}} of attempted calls succeeded "
                        f"over the last {w} (threshold {threshold:.0%}).",
            runbook_url=runbook("ProviderSuccessRateLow"),
        )

    def latency(severity: Severity, threshold: float) -> AlertRule:
        return AlertRule(
            "ProviderLatencyHigh", severity, "latency_p95", threshold, alerts.window, alerts.for_,
            alerts.min_requests,
            summary=f"Provider p95 latency above {r.num(threshold)}s",
            description=f"{_TARGET}: p95 latency of attempted calls is {{{{ $value | humanizeDuration }}}} "
                        f"over the last {w} (threshold {r.num(threshold)}s).",
            runbook_url=runbook("ProviderLatencyHigh"),
        )

    slo = Slo(alerts.slo)
    period = format_duration(slo.period)

    def burn(name: str, kind: Kind, signal: Signal, severity: Severity) -> AlertRule:
        page = severity == "critical"
        pairs = " or ".join(f"{p.factor:g}x over {format_duration(p.long)} and {format_duration(p.short)}"
                            for p in slo.pairs(page))
        spent = "failed calls" if signal == "availability" else "calls slower than the latency threshold"
        query = (f'{{{{ with printf "{budget_record(signal)}{{provider=%q, operation=%q}}" $labels.provider '
                 f"$labels.operation | query }}}}{{{{ . | first | value | humanizePercentage }}}}{{{{ end }}}}")
        return AlertRule(
            name, severity, kind, 0.0, max(p.long for p in slo.pairs(page)), 0.0, alerts.min_requests,
            summary=f"Provider {signal} error budget burning {'fast' if page else 'steadily'}",
            description=f"{_TARGET}: {spent} spend the {signal} error budget {{{{ $value | printf \"%.1f\" }}}}x "
                        f"as fast as the objective allows over the long window ({pairs}).",
            runbook_url=runbook(name), slo=slo, page=page,
            budget_left=f"{query} of the {period} {signal} error budget left",
        )

    def spend(severity: Severity) -> AlertRule:
        page = severity == "critical"
        day, hour = format_duration(DAY / slo.settings.time_scale), format_duration(HOUR / slo.settings.time_scale)
        month = format_duration(MONTH / slo.settings.time_scale)
        what = (f"spent {{{{ $value | humanizePercentage }}}} of a budget: of the daily one over the last {day}, or "
                "of the monthly one this UTC month" if page else
                f"spends at a rate that would use {{{{ $value | humanizePercentage }}}} of a budget: of the daily "
                f"one at the rate of the last {hour} kept for {day}, or of the monthly one at the rate of the "
                f"last {day} kept for {month}")
        return AlertRule(
            "ProviderBudgetBurn", severity, "spend_budget_burn", 1.0, DAY / slo.settings.time_scale, 0.0, 0,
            summary="Provider spend budget spent" if page else "Provider spend budget burning",
            description=f"{{{{ $labels.provider }}}}: {what} (P_BUDGET_DAILY_USD, P_BUDGET_MONTHLY_USD).",
            runbook_url=runbook("ProviderBudgetBurn"), slo=slo, page=page, spend=alerts.spend,
        )

    budgets = (spend("critical"), spend("warning")) if alerts.spend else ()
    return (
        success("warning", alerts.success_rate_warning),
        success("critical", alerts.success_rate_critical),
        latency("warning", alerts.latency_p95_warning),
        latency("critical", alerts.latency_p95_critical),
        AlertRule(
            "ProviderCircuitOpen", "critical", "circuit_open", 0.0, alerts.window, alerts.for_, 0,
            summary="Provider circuit breaker open",
            description=f"{_TARGET}: the circuit breaker is open now or opened during the last {w}; "
                        "calls are rejected with 503 until a trial call succeeds.",
            runbook_url=runbook("ProviderCircuitOpen"),
        ),
        AlertRule(
            "ProviderRateLimited", "warning", "rate_limited", 0.0, alerts.window, alerts.for_, 0,
            summary="Calls rejected by the gateway's rate limit",
            description=f'{_TARGET}: {{{{ $value | printf "%.0f" }}}} calls rejected by the rate limit '
                        f"over the last {w}.",
            runbook_url=runbook("ProviderRateLimited"),
        ),
        AlertRule(
            "GatewayStateBackendDown", "warning", "state_backend_down", 0.0, alerts.window, alerts.for_, 0,
            summary="Shared state store not answering",
            description="The {{ $labels.backend }} state store does not answer some replica: it serves with "
                        "its own rate limits and circuit breakers until the store returns, so the replicas "
                        "together may admit more than the configured rate limits, and a breaker opened "
                        "in one replica no longer rejects calls in the others.",
            runbook_url=runbook("GatewayStateBackendDown"),
        ),
        AlertRule(
            "ProviderSaturated", "warning", "saturated", alerts.saturation_ratio, alerts.window, alerts.for_, 0,
            summary="Provider at its concurrency limit",
            description=f"{{{{ $labels.provider }}}}: calls refused as overloaded over the last {w}, or calls "
                        f"in flight at {alerts.saturation_ratio:.0%} or more of P_MAX_CONCURRENCY in some "
                        f'replica (value {{{{ $value | printf "%.4g" }}}}: the refusals when there were any, '
                        "else the highest share of the limit in flight).",
            runbook_url=runbook("ProviderSaturated"),
        ),
        AlertRule(
            "GatewayEventLoopLagHigh", "warning", "event_loop_lag", alerts.event_loop_lag_warning, alerts.window,
            alerts.for_, 0,
            summary=f"Gateway event loop lag p99 above {r.num(alerts.event_loop_lag_warning)}s",
            description=f"{{{{ $labels.instance }}}}: p99 event-loop lag is {{{{ $value | humanizeDuration }}}} "
                        f"over the last {w} (threshold {r.num(alerts.event_loop_lag_warning)}s): the replica is "
                        "CPU-bound or something blocks its loop, so every call it serves waits.",
            runbook_url=runbook("GatewayEventLoopLagHigh"),
        ),
        burn("ProviderErrorBudgetBurn", "error_budget_burn", "availability", "critical"),
        burn("ProviderErrorBudgetBurn", "error_budget_burn", "availability", "warning"),
        burn("ProviderLatencyBudgetBurn", "latency_budget_burn", "latency", "critical"),
        burn("ProviderLatencyBudgetBurn", "latency_budget_burn", "latency", "warning"),
        *budgets,
    )
