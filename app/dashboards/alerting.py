"""What the dashboards take from the rules source: thresholds, alert names and runbook links."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import AlertSettings, format_duration
from ..monitoring.rules import DEFAULT_RUNBOOK_BASE_URL, RUNBOOK_PATH, alert_rules
from ..monitoring.slo import Slo


@dataclass(frozen=True)
class Facts:
    """The numbers and links a dashboard shows next to the signals the alerts read."""

    success_rate: tuple[float, float]
    """ProviderSuccessRateLow: (warning, critical) ratios; below fires."""
    latency_p95: tuple[float, float]
    """ProviderLatencyHigh: (warning, critical) seconds; above fires."""
    saturation: float
    """ProviderSaturated: in flight at this share of ``provider_client_concurrency_limit``."""
    event_loop_lag: float
    """GatewayEventLoopLagHigh: p99 event-loop lag in seconds (``ALERT_EVENT_LOOP_LAG_WARNING``)."""
    runbooks: dict[str, str]
    """Runbook link by alert name, in the rules' order."""
    runbook_index: str
    """The runbook file itself."""
    burn_pairs: tuple[tuple[str, float], ...]
    """The budget-burn alerts' pairs as (long window, factor): 1h at 14.4x ... 3d at 1x."""
    slo_period: str
    """The error budgets' period (``SLO_PERIOD``)."""


def facts(settings: AlertSettings, runbook_base_url: str = DEFAULT_RUNBOOK_BASE_URL) -> Facts:
    """Read the rules as rendered for ``settings``: the dashboards and rule files then agree."""
    rules = alert_rules(settings, runbook_base_url)

    def pair(kind: str) -> tuple[float, float]:
        by_severity = {r.severity: r.threshold for r in rules if r.kind == kind}
        return by_severity["warning"], by_severity["critical"]

    def single(kind: str) -> float:
        [threshold] = [r.threshold for r in rules if r.kind == kind]
        return threshold

    slo = Slo(settings.slo)
    burn_pairs = tuple((format_duration(p.long), p.factor) for page in (True, False) for p in slo.pairs(page))
    return Facts(pair("success_rate"), pair("latency_p95"), single("saturated"), single("event_loop_lag"),
                 {r.name: r.runbook_url for r in rules}, f"{runbook_base_url}{RUNBOOK_PATH}", burn_pairs,
                 format_duration(slo.period))
