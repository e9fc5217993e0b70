"""Renders the Prometheus and Grafana alert rule files from :mod:`app.monitoring.rules`.

``python -m app rules render`` writes ``alerts/prometheus/rules.yml`` and
``alerts/grafana/alert-rules.yaml`` (paths relative to ``--out``, by default ``alerts`` in the
working directory) and the same Prometheus rule group as a Prometheus Operator ``PrometheusRule``
in ``deploy/kubernetes/prometheusrule.yaml`` (``--kubernetes-out``), and beside them the
error-budget unit tests' scaled profile (``prometheus/rules-scaled.yml``, :func:`scaled`); ``--check`` writes nothing
and exits 1 with a unified diff when the committed files differ. ``--window``, ``--for``,
``--eval-interval``, ``--min-requests`` and ``--slo-time-scale`` render variants (the stack tests render short windows
into a temporary directory; variants are never committed),
and ``--from-env`` starts from the ``ALERT_*`` environment, so that a deployment that overrides
thresholds can render rule files that agree with its gateway.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import math
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from ..config import AlertSettings, ConfigError, SpendBudget, format_duration, load_settings, parse_duration
from .rules import DEFAULT_RUNBOOK_BASE_URL, AlertRule, alert_rules, recording_rules

PROMETHEUS_RULES = Path("prometheus/rules.yml")
GRAFANA_RULES = Path("grafana/alert-rules.yaml")
KUBERNETES_RULES = Path("prometheusrule.yaml")
"""Under ``--kubernetes-out`` (``deploy/kubernetes`` when ``--out`` is the default ``alerts``)."""
KUBERNETES_OUT = Path("deploy/kubernetes")
SCALED_RULES = Path("prometheus/rules-scaled.yml")
"""The rule file of the error-budget unit tests: every SLO window divided by :data:`TEST_TIME_SCALE`
and evaluated every 5 seconds, so a 3-day window is 72 minutes. Rendered and checked with the others;
never loaded by a Prometheus."""
TEST_TIME_SCALE = 60
TEST_SPEND_BUDGETS: Mapping[str, SpendBudget] = {"deepgram": SpendBudget(monthly=30.0),
                                                  "openai": SpendBudget(daily=10.0, monthly=200.0)}
"""The spend budgets of the test profile, so ``ProviderBudgetBurn`` has rules to test (an unset budget
renders no rule): one provider with both budgets, one with a monthly budget only."""
GROUP = "provider-alerts"
"""The one rule group (it holds the gateway's state backend alert too)."""
DATASOURCE_UID = "prometheus"
"""The Prometheus datasource UID of ``dashboards/provisioning/datasources/prometheus.yaml``."""
GRAFANA_SCHEDULER_SECONDS = 10
"""Grafana evaluates rules on a 10 s tick; a group interval must be a multiple of it."""
_REDUCED = "B"
"""refId of the reduce step, whose value Grafana's annotation templates read."""
_HEADER = ("# Rendered by `python -m app rules render` from app/monitoring/rules.py: "
           "edit that, not this file.\n")


def prometheus_rules(
    settings: AlertSettings, runbook_base_url: str = DEFAULT_RUNBOOK_BASE_URL
) -> dict[str, Any]:
    """One rule group: the recording rules, then the alerts that read them (rules in a group run
    in order, so every alert sees the values recorded in the same evaluation)."""
    rules: list[dict[str, Any]] = [{"record": r.record, "expr": r.expr} for r in recording_rules(settings)]
    for rule in alert_rules(settings, runbook_base_url):
        rules.append({
            "alert": rule.name,
            "expr": rule.promql(),
            "for": format_duration(rule.for_),
            "labels": rule.labels,
            "annotations": _annotations(rule),
        })
    return {"groups": [{"name": GROUP, "interval": format_duration(settings.eval_interval), "rules": rules}]}


def grafana_rules(
    settings: AlertSettings, runbook_base_url: str = DEFAULT_RUNBOOK_BASE_URL
) -> dict[str, Any]:
    """Grafana file provisioning (apiVersion 1): the same alerts as Grafana-managed rules.

    Each rule queries Prometheus with the inlined expression (no dependency on the recording
    rules), reduces to the last value and applies the threshold. Warning and critical rules share
    their title (Grafana's ``alertname``), which Grafana allows once per folder, so each severity
    has its own folder.
    """
    ticks = math.ceil(settings.eval_interval / GRAFANA_SCHEDULER_SECONDS)
    interval = format_duration(max(1, ticks) * GRAFANA_SCHEDULER_SECONDS)
    groups: list[dict[str, Any]] = []
    for severity in ("critical", "warning"):
        rules = [_grafana_rule(r) for r in alert_rules(settings, runbook_base_url) if r.severity == severity]
        groups.append({"orgId": 1, "name": GROUP, "folder": f"AI gateway alerts ({severity})",
                       "interval": interval, "rules": rules})
    return {"apiVersion": 1, "groups": groups}


def prometheus_rule(settings: AlertSettings, runbook_base_url: str = DEFAULT_RUNBOOK_BASE_URL) -> dict[str, Any]:
    """The same rule group as a Prometheus Operator ``PrometheusRule`` (``monitoring.coreos.com/v1``)."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "ai-gateway", "labels": {"app.kubernetes.io/name": "ai-gateway"}},
        "spec": prometheus_rules(settings, runbook_base_url),
    }


def _annotations(rule: AlertRule) -> dict[str, str]:
    budget = {"budget_left": rule.budget_left} if rule.budget_left is not None else {}
    return {"summary": rule.summary, "description": rule.description, "runbook_url": rule.runbook_url, **budget}


def _grafana_rule(rule: AlertRule) -> dict[str, Any]:
    comparison, threshold = rule.condition.grafana_threshold(rule.threshold)
    expression = {"type": "__expr__", "uid": "__expr__"}
    annotations = _annotations(rule)
    annotations.pop("budget_left", None)  # a query: Grafana's templates have no query function
    # Grafana's templates see the reduced value as $values.B.Value; $value is a text summary there.
    annotations["description"] = re.sub(r"\$value\b", f"$values.{_REDUCED}.Value", rule.description)
    return {
        "uid": f"{_kebab(rule.name)}-{rule.severity}",
        "title": rule.name,
        "condition": "C",
        "data": [
            {
                "refId": "A",
                "relativeTimeRange": {"from": int(rule.window), "to": 0},
                "datasourceUid": DATASOURCE_UID,
                "model": {
                    "refId": "A",
                    "datasource": {"type": "prometheus", "uid": DATASOURCE_UID},
                    "expr": rule.promql(recorded=False),
                    "instant": True,
                    "range": False,
                    "intervalMs": 1000,
                    "maxDataPoints": 43200,
                },
            },
            {
                "refId": _REDUCED,
                "datasourceUid": "__expr__",
                "model": {"refId": _REDUCED, "datasource": expression, "type": "reduce", "expression": "A",
                          "reducer": "last", "settings": {"mode": "dropNN"}},
            },
            {
                "refId": "C",
                "datasourceUid": "__expr__",
                "model": {"refId": "C", "datasource": expression, "type": "threshold", "expression": _REDUCED,
                          "conditions": [{"evaluator": {"type": comparison, "params": [threshold]}}]},
            },
        ],
        "noDataState": "OK",
        "execErrState": "Error",
        "for": format_duration(rule.for_),
        "labels": rule.labels,
        "annotations": annotations,
        "isPaused": False,
    }


def _kebab(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()


class _Dumper(yaml.SafeDumper):
    """Writes repeated values out in full: provisioning files read better without YAML aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _dump(data: dict[str, Any], settings: AlertSettings) -> str:
    timing = (f"# window {format_duration(settings.window)}, for {format_duration(settings.for_)}, "
              f"evaluation interval {format_duration(settings.eval_interval)}, "
              f"at least {settings.min_requests} attempted calls"
              + (f", error-budget windows divided by {settings.slo.time_scale}" if settings.slo.time_scale > 1 else "")
              + "\n")
    body = yaml.dump(data, Dumper=_Dumper, sort_keys=False, width=1_000_000, allow_unicode=True)
    return _HEADER + timing + body


def render(settings: AlertSettings, runbook_base_url: str = DEFAULT_RUNBOOK_BASE_URL) -> dict[Path, str]:
    """The rule files' text by path relative to the output directory."""
    return {
        PROMETHEUS_RULES: _dump(prometheus_rules(settings, runbook_base_url), settings),
        GRAFANA_RULES: _dump(grafana_rules(settings, runbook_base_url), settings),
    }


def scaled(settings: AlertSettings) -> AlertSettings:
    """The error-budget tests' profile of ``settings`` (:data:`SCALED_RULES`), with the spend
    budgets of :data:`TEST_SPEND_BUDGETS` where ``settings`` has none."""
    return dataclasses.replace(settings, eval_interval=5.0, spend=settings.spend or TEST_SPEND_BUDGETS,
                               slo=dataclasses.replace(settings.slo, time_scale=TEST_TIME_SCALE))


def _seconds(text: str) -> float:
    try:
        value = parse_duration(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 30s, 5m)") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"not a positive duration: {text!r}")
    return value


def _count(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"not a positive integer: {text!r}")
    return int(text)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m app rules",
                                     description="Alert rule files for Prometheus and Grafana")
    commands = parser.add_subparsers(dest="command", required=True)
    r = commands.add_parser("render", help="write (or --check) the rule files rendered from rules.py")
    r.add_argument("--check", action="store_true",
                   help="write nothing; exit 1 with a diff if the files differ")
    r.add_argument("--out", type=Path, default=Path("alerts"), help="output directory (default: ./alerts)")
    r.add_argument("--from-env", action="store_true",
                   help="start from the ALERT_* environment, not the defaults")
    r.add_argument("--window", type=_seconds, metavar="DURATION", help="alert window, e.g. 30s")
    r.add_argument("--for", dest="for_", type=_seconds, metavar="DURATION", help="for duration, e.g. 10s")
    r.add_argument("--eval-interval", type=_seconds, metavar="DURATION",
                   help="rule evaluation interval, e.g. 5s")
    r.add_argument("--min-requests", type=_count, metavar="N", help="attempted calls the window must hold")
    r.add_argument("--slo-time-scale", type=_count, metavar="N",
                   help="divide every error-budget window and the period by N (SLO_TIME_SCALE)")
    r.add_argument("--event-loop-lag-warning", type=_seconds, metavar="DURATION",
                   help="p99 event loop lag that fires GatewayEventLoopLagHigh, e.g. 250ms")
    r.add_argument("--kubernetes-out", type=Path, metavar="DIR",
                   help="where the PrometheusRule goes (default: deploy/kubernetes when --out is alerts, "
                        "else not rendered)")
    r.add_argument("--runbook-base-url", default=DEFAULT_RUNBOOK_BASE_URL,
                   help="prefix of the runbook links (default: repository-relative)")
    return parser


def _settings(args: argparse.Namespace) -> AlertSettings:
    settings = load_settings().alerts if args.from_env else AlertSettings()
    names = ("window", "for_", "eval_interval", "min_requests", "event_loop_lag_warning")
    overrides = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    settings = dataclasses.replace(settings, **overrides)
    if args.slo_time_scale is not None:
        settings = dataclasses.replace(settings, slo=dataclasses.replace(settings.slo, time_scale=args.slo_time_scale))
    return settings


def check(files: dict[Path, str], out: Path) -> list[str]:
    """Unified diffs of the files on disk against ``files``; empty when they all agree."""
    diffs: list[str] = []
    for relative, text in files.items():
        path = out / relative
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        if current != text:
            diffs.append("".join(difflib.unified_diff(
                current.splitlines(keepends=True), text.splitlines(keepends=True),
                fromfile=f"{path} (committed)", tofile=f"{path} (rendered)")))
    return diffs


def main(argv: Sequence[str] | None = None) -> int:
    """``rules render [--check] [--out DIR] [overrides]``; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        settings = _settings(args)
    except ConfigError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    drifted = "the rule files differ from app/monitoring/rules.py: run `python -m app rules render`"
    test_profile = scaled(settings)  # the error-budget unit tests' rules, beside every rendering
    files = {**render(settings, args.runbook_base_url),
             SCALED_RULES: _dump(prometheus_rules(test_profile, args.runbook_base_url), test_profile)}
    status = write_or_check(files, args.out, args.check, drifted)
    kubernetes_out = args.kubernetes_out or (KUBERNETES_OUT if args.out == Path("alerts") else None)
    if kubernetes_out is not None:
        rule = {KUBERNETES_RULES: _dump(prometheus_rule(settings, args.runbook_base_url), settings)}
        status = max(status, write_or_check(rule, kubernetes_out, args.check, drifted))
    return status


def write_or_check(files: dict[Path, str], out: Path, check_only: bool, drifted: str) -> int:
    """Write ``files`` under ``out`` (0), or with ``check_only`` print the diffs against what is
    there and exit 1 with the ``drifted`` message when any differ: the render commands' ending."""
    if check_only:
        diffs = check(files, out)
        sys.stdout.writelines(diffs)
        if diffs:
            print(drifted, file=sys.stderr)
            return 1
        return 0
    for relative, text in files.items():
        path = out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")
    return 0
