"""One set of cases, two engines, two metric paths: the promtool tests under alerts/tests/ replayed
through the in-app evaluator, which must expect exactly what promtool (Prometheus 3) expects of the
rendered rules, with the series as scraped and as received over OTLP (:mod:`.arrival`).

For every test group, the evaluator reads the group's ``input_series`` (``SampleSource``
expands promtool's notation) and evaluates at promtool's steps from time 0. At each
``alert_rule_test`` time its firing alerts must equal ``exp_alerts`` (labels and annotations);
at each ``promql_expr_test`` time, ``ALERTS{...}`` must equal its pending or firing alerts, and the
recording rules' values must equal the evaluator's window statistics. An expression this test
cannot map fails it, so that every case runs in both engines. test_rules.py runs promtool on the
same files, on both paths.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from app.config import AlertSettings, parse_duration
from app.monitoring.conditions import DAY
from app.monitoring.evaluator import Alert, Evaluator
from app.monitoring.promql import bucket_quantile
from app.monitoring.render import scaled
from app.monitoring.rules import alert_rules, recording_rules
from app.monitoring.samples import SampleSource, parse_series
from app.monitoring.stats import WindowStats

from .arrival import PATHS, arriving
from .conftest import ALERTS

SETTINGS = AlertSettings()
"""The settings the committed rules are rendered with (test_rules.py checks the drift)."""
PROFILES = {"../prometheus/rules.yml": SETTINGS, "../prometheus/rules-scaled.yml": scaled(SETTINGS)}
"""The settings of each committed rule file the tests run: the error-budget tests run the scaled one."""
TEST_FILES = sorted((ALERTS / "tests").glob("*.yml"))
_SELECTOR = re.compile(r"^\s*([A-Za-z_:][A-Za-z0-9_:]*)\s*(?:\{(.*)\})?\s*$")
_MATCHER = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*(!=|=)\s*"([^"]*)"\s*,?')
LabelSet = frozenset[tuple[str, str]]


def _cases() -> list[Any]:
    cases = []
    for metric_path in PATHS:
        for path in TEST_FILES:
            document = yaml.safe_load(arriving(path.read_text(), metric_path))
            for index, group in enumerate(document["tests"]):
                cases.append(pytest.param(document, group, id=f"{metric_path}-{path.stem}[{index}]"))
    return cases


Recorded = Callable[[SampleSource, float], dict[LabelSet, float]]
"""A recording rule's series (labels without the name, value) at a time, from the evaluator's source."""


def _per_operation(value: Callable[[WindowStats], float]) -> Recorded:
    def series(source: SampleSource, now: float) -> dict[LabelSet, float]:
        return {frozenset({"provider": p, "operation": o}.items()): float(value(s))
                for (p, o), s in source.window_stats(now, SETTINGS.window).items()}
    return series


def _loop_lag_p99(source: SampleSource, now: float) -> dict[LabelSet, float]:
    return {frozenset({"instance": instance}.items()): bucket_quantile(0.99, buckets)
            for instance, buckets in source.loop_lag(now, SETTINGS.window).items()}


def _recorded_values() -> dict[str, Recorded]:
    """The recording rules that the tests query, as functions of the evaluator's inputs."""
    by_role: dict[str, Recorded] = {}
    for rule in recording_rules(SETTINGS):
        if ":provider_client_request_duration_seconds_count:increase" in rule.record:
            by_role[rule.record] = _per_operation(lambda s: s.attempted if s.attempted is not None else math.nan)
        elif ":provider_client_request_success:ratio" in rule.record:
            by_role[rule.record] = _per_operation(lambda s: s.succeeded / s.attempted if s.attempted else math.nan)
        elif ":p95_rate" in rule.record:
            by_role[rule.record] = _per_operation(lambda s: bucket_quantile(0.95, s.buckets))
        elif rule.record.startswith("instance:gateway_event_loop_lag_seconds:p99_rate"):
            by_role[rule.record] = _loop_lag_p99
    return by_role


RECORDED = _recorded_values()


def _selector(expr: str) -> tuple[str, list[tuple[str, str, str]]]:
    match = _SELECTOR.match(expr)
    assert match, f"the parity test maps only plain selectors, not {expr!r}"
    matchers = _MATCHER.findall(match.group(2) or "")
    return match.group(1), matchers


def _matches(labels: dict[str, str], matchers: list[tuple[str, str, str]]) -> bool:
    return all((labels.get(name, "") == value) == (op == "=") for name, op, value in matchers)


def _alerts_series(alerts: list[Alert]) -> dict[LabelSet, float]:
    return {frozenset({"__name__": "ALERTS", "alertstate": a.state, **a.labels}.items()): 1.0 for a in alerts}


def _close(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def test_every_test_file_runs_the_committed_rules() -> None:
    assert TEST_FILES
    for path in TEST_FILES:
        document = yaml.safe_load(path.read_text())
        (rule_file,) = document["rule_files"]
        assert rule_file in PROFILES, path
        assert parse_duration(document["evaluation_interval"]) == PROFILES[rule_file].eval_interval, path


@pytest.mark.parametrize(("document", "group"), _cases())
def test_evaluator_expects_what_promtool_expects(document: dict[str, Any], group: dict[str, Any]) -> None:
    step = parse_duration(document["evaluation_interval"])
    source = SampleSource.from_promtool(group["input_series"], parse_duration(group["interval"]))
    evaluator = Evaluator(alert_rules(PROFILES[document["rule_files"][0]]), source, eval_interval=step)
    checks = [("alert", parse_duration(str(c["eval_time"])), c) for c in group.get("alert_rule_test", [])]
    checks += [("expr", parse_duration(str(c["eval_time"])), c) for c in group.get("promql_expr_test", [])]
    assert checks
    by_time: dict[float, list[tuple[str, dict[str, Any]]]] = {}
    for kind, when, check in checks:
        by_time.setdefault(when, []).append((kind, check))
    last = max(by_time)
    for n in range(int(last / step) + 1):
        now = n * step
        alerts = evaluator.evaluate(now)
        for kind, check in by_time.pop(now, []):
            if kind == "alert":
                _check_alerts(check, alerts, now)
            else:
                _check_expr(check, alerts, source, now)
    assert not by_time, f"eval_time not on an evaluation step of {step}s: {sorted(by_time)}"


def _check_alerts(check: dict[str, Any], alerts: list[Alert], now: float) -> None:
    name = check["alertname"]
    expected = {(frozenset({"alertname": name, **e.get("exp_labels", {})}.items()),
                 frozenset(e.get("exp_annotations", {}).items())) for e in check.get("exp_alerts") or []}
    got = {(frozenset(a.labels.items()), frozenset(a.annotations.items()))
           for a in alerts if a.name == name and a.state == "firing"}
    assert got == expected, f"{name} at {now}s"


def _check_expr(check: dict[str, Any], alerts: list[Alert], source: SampleSource, now: float) -> None:
    metric, matchers = _selector(check["expr"])
    if metric == "ALERTS":
        got = _alerts_series(alerts)
    else:
        assert metric in RECORDED, f"the parity test cannot map {check['expr']!r}"
        got = {frozenset({"__name__": metric, **dict(labels)}.items()): value
               for labels, value in RECORDED[metric](source, now).items()}
    got = {labels: value for labels, value in got.items() if _matches(dict(labels), matchers)}
    expected: dict[LabelSet, float] = {}
    for sample in check.get("exp_samples") or []:
        name, sample_labels = parse_series(sample["labels"])
        expected[frozenset({"__name__": name, **sample_labels}.items())] = float(sample["value"])
    assert set(got) == set(expected), f"{check['expr']} at {now}s"
    for labels, value in expected.items():
        assert _close(got[labels], value), f"{check['expr']} {dict(labels)} at {now}s: {got[labels]}"


def test_parity_covers_every_alert_and_severity() -> None:
    """Every rule (alert and severity) fires in some case, so that both engines are compared
    on each."""
    fired: set[tuple[str, str]] = set()
    for path in TEST_FILES:
        for group in yaml.safe_load(path.read_text())["tests"]:
            for check in group.get("alert_rule_test", []):
                for alert in check.get("exp_alerts") or []:
                    fired.add((check["alertname"], alert["exp_labels"]["severity"]))
    assert fired == {(r.name, r.severity) for settings in PROFILES.values() for r in alert_rules(settings)}


def test_the_scaled_profile_divides_only_the_error_budget_windows() -> None:
    """The error-budget cases run the committed rules with every SLO window and the period divided
    by one setting (SLO_TIME_SCALE): what they prove holds for the unscaled rules."""
    full, test = (alert_rules(p) for p in PROFILES.values())
    scale = PROFILES["../prometheus/rules-scaled.yml"].slo.time_scale
    assert scale == 60
    # Spend budgets are unset by default (no rule); the scaled profile sets some, and scales their day.
    spend = [b for b in test if b.kind == "spend_budget_burn"]
    assert [b.severity for b in spend] == ["critical", "warning"]
    assert all(b.window == DAY / scale and "[24m]" in b.promql() for b in spend)
    assert "[1m]" in spend[1].promql() and "* 43200 /" in spend[1].promql()  # the hour, the 30d month
    test = tuple(b for b in test if b not in spend)
    for a, b in zip(full, test, strict=True):
        assert (a.name, a.severity, a.kind) == (b.name, b.severity, b.kind)
        if a.slo is None:
            assert a.promql() == b.promql()
            continue
        assert b.slo is not None and b.window == a.window / scale
        assert [(p.long / scale, p.short / scale, p.factor) for p in a.slo.pairs(a.page)] == [
            (p.long, p.short, p.factor) for p in b.slo.pairs(b.page)]
        assert b.slo.period == a.slo.period / scale
