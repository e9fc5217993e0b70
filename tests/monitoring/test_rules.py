"""The single source of alert rules: DESIGN.md's table, settings-driven, valid PromQL."""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

import pytest
import yaml

from app.config import AlertSettings, format_duration
from app.monitoring.rules import alert_rules, recording_rules

from ..support import stack_binary

pytestmark = pytest.mark.stack

BY = {"state_backend_down": ("backend",), "saturated": ("provider",), "event_loop_lag": ("instance",)}


def test_the_rules_of_the_alert_table() -> None:
    rules = alert_rules(AlertSettings())
    table = {(r.name, r.severity): (r.kind, r.threshold) for r in rules}
    assert table == {
        ("ProviderSuccessRateLow", "warning"): ("success_rate", 0.95),
        ("ProviderSuccessRateLow", "critical"): ("success_rate", 0.80),
        ("ProviderLatencyHigh", "warning"): ("latency_p95", 5.0),
        ("ProviderLatencyHigh", "critical"): ("latency_p95", 10.0),
        ("ProviderCircuitOpen", "critical"): ("circuit_open", 0.0),
        ("ProviderRateLimited", "warning"): ("rate_limited", 0.0),
        ("GatewayStateBackendDown", "warning"): ("state_backend_down", 0.0),
        ("ProviderSaturated", "warning"): ("saturated", 0.8),
        ("GatewayEventLoopLagHigh", "warning"): ("event_loop_lag", 0.1),
        ("ProviderErrorBudgetBurn", "critical"): ("error_budget_burn", 0.0),
        ("ProviderErrorBudgetBurn", "warning"): ("error_budget_burn", 0.0),
        ("ProviderLatencyBudgetBurn", "critical"): ("latency_budget_burn", 0.0),
        ("ProviderLatencyBudgetBurn", "warning"): ("latency_budget_burn", 0.0),
    }
    for rule in rules:
        assert rule.by == BY.get(rule.kind, ("provider", "operation"))
        assert all(f"{{{{ $labels.{label} }}}}" in rule.description for label in rule.by)
        assert "{{" not in rule.summary
        assert rule.runbook_url == f"alerts/RUNBOOK.md#{rule.name.lower()}"
        if rule.slo is not None:  # the error-budget rules: their own windows, no `for`
            assert (rule.window, rule.for_, rule.min_requests) == (
                (21600.0 if rule.page else 259200.0), 0.0, 10)
            continue
        assert (rule.window, rule.for_) == (300.0, 60.0)
        assert rule.min_requests == (10 if rule.kind in ("success_rate", "latency_p95") else 0)


def test_the_state_backend_rule_needs_no_selector_and_ignores_absent_data() -> None:
    (state,) = [r for r in alert_rules(AlertSettings(for_=10)) if r.name == "GatewayStateBackendDown"]
    assert state.promql() == state.promql(recorded=False) == "min by (backend) (gateway_state_backend_up) == 0"
    assert state.for_ == 10 and state.labels == {"severity": "warning"}
    assert state.breached(0) and not state.breached(1)


def test_rules_follow_the_settings() -> None:
    alerts = AlertSettings(window=30, for_=5, min_requests=3, success_rate_warning=0.9, latency_p95_critical=15)
    rules = {(r.name, r.severity): r for r in alert_rules(alerts, "https://example.test/repo/")}
    warning = rules[("ProviderSuccessRateLow", "warning")]
    assert (warning.threshold, warning.window, warning.for_, warning.min_requests) == (0.9, 30, 5, 3)
    assert "[30s]" in warning.promql(recorded=False) and "< 0.9 " in warning.promql()
    assert all(not any(rec.record in r.promql(recorded=False) for rec in recording_rules(alerts))
               for r in rules.values())
    assert ">= 3" in warning.promql()
    assert "> 15 " in rules[("ProviderLatencyHigh", "critical")].promql()
    assert warning.runbook_url == "https://example.test/repo/alerts/RUNBOOK.md#providersuccessratelow"
    assert all(r.record.endswith(":increase30s") or r.record.endswith("30s") for r in recording_rules(alerts)[:6])


def test_rule_comparisons() -> None:
    rules = {(r.name, r.severity): r for r in alert_rules(AlertSettings())}
    success = rules[("ProviderSuccessRateLow", "warning")]
    assert success.breached(0.949) and not success.breached(0.95)
    latency = rules[("ProviderLatencyHigh", "critical")]
    assert latency.breached(10.01) and not latency.breached(10.0)
    limited = rules[("ProviderRateLimited", "warning")]
    assert limited.breached(1) and not limited.breached(0)


def test_promtool_accepts_the_recorded_and_inlined_expressions(tmp_path: Path) -> None:
    alerts = AlertSettings()
    for recorded in (True, False):
        groups = [
            {"name": "recording", "rules": [dataclasses.asdict(r) for r in recording_rules(alerts)]},
            {"name": "alerts", "rules": [
                {"alert": r.name, "expr": r.promql(recorded), "for": format_duration(r.for_), "labels": r.labels,
                 "annotations": {"summary": r.summary, "description": r.description, "runbook_url": r.runbook_url}}
                for r in alert_rules(alerts)]},
        ]
        path = tmp_path / f"rules-{recorded}.yml"
        path.write_text(yaml.safe_dump({"groups": groups}))
        result = subprocess.run([stack_binary("promtool"), "check", "rules", str(path)],
                                capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stdout + result.stderr


def test_the_saturation_rule_is_either_branch_per_provider_without_job_or_instance() -> None:
    alerts = AlertSettings(window=30, saturation_ratio=0.9)
    (rule,) = [r for r in alert_rules(alerts) if r.name == "ProviderSaturated"]
    assert rule.promql(recorded=False) == (
        'sum by (provider) (increase(provider_client_rejections_total{reason="overloaded"}[30s])) > 0 or '
        "max by (provider) (sum without (operation) (provider_client_active_requests) "
        "/ provider_client_concurrency_limit) >= 0.9")
    assert rule.promql() == (
        'sum by (provider) (provider_operation_reason:provider_client_rejections:increase30s{reason="overloaded"}) '
        "> 0 or max by (provider) (sum without (operation) (provider_client_active_requests) "
        "/ provider_client_concurrency_limit) >= 0.9")
    assert rule.breached(0.9) and not rule.breached(0.89)
    assert (rule.threshold, rule.by, rule.labels) == (0.9, ("provider",), {"severity": "warning"})
    assert "job" not in rule.promql(recorded=False) and "instance" not in rule.promql(recorded=False)


def test_the_event_loop_lag_rule_is_a_p99_per_instance() -> None:
    alerts = AlertSettings(window=30, event_loop_lag_warning=0.25)
    (rule,) = [r for r in alert_rules(alerts) if r.name == "GatewayEventLoopLagHigh"]
    assert rule.promql(recorded=False) == (
        "(histogram_quantile(0.99, sum by (instance, le) (rate(gateway_event_loop_lag_seconds_bucket[30s])))) > 0.25")
    assert rule.promql() == "instance:gateway_event_loop_lag_seconds:p99_rate30s > 0.25"
    assert rule.breached(0.26) and not rule.breached(0.25)
    assert "threshold 0.25s" in rule.description and rule.summary.endswith("above 0.25s")
