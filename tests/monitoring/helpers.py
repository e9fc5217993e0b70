"""Monitoring built from environment-style settings, on a clock the test moves."""

from __future__ import annotations

from collections.abc import Mapping

from app.config import Settings, load_settings
from app.monitoring import Alert, Monitoring
from tests.support import Clock


def settings(env: Mapping[str, str] | None = None) -> Settings:
    base = {"ALERT_WINDOW": "5m", "ALERT_FOR": "1m", "ALERT_EVAL_INTERVAL": "15s", "ALERT_MIN_REQUESTS": "10"}
    return load_settings({**base, **(env or {})})


def monitoring(env: Mapping[str, str] | None = None, clock: Clock | None = None) -> tuple[Monitoring, Clock]:
    clock = clock or Clock()
    return Monitoring(settings(env), clock), clock


def record(m: Monitoring, service: str, ok: int, failed: int = 0, latency_ms: float = 100.0,
           error_type: str = "upstream_5xx") -> None:
    """``ok`` successful and ``failed`` failed calls of ``service`` (``provider.operation``) now."""
    for _ in range(ok):
        m.record_request(service, True, latency_ms)
    for _ in range(failed):
        m.record_request(service, False, latency_ms, error_type)


BUDGET_BURN = frozenset({"ProviderErrorBudgetBurn", "ProviderLatencyBudgetBurn"})
"""The error-budget alerts (tests/monitoring/test_slo.py): with no traffic before it, any burst of
errors or slow calls burns the budget in both windows at once, so they hold beside the others."""


def threshold_alerts(alerts: list[Alert]) -> list[Alert]:
    """``alerts`` without the error-budget ones, for the tests of the threshold alerts."""
    return [a for a in alerts if a.name not in BUDGET_BURN]
