"""Metrics both ways into Prometheus 3: scraped from ``/metrics``, and exported over OTLP through the
Collector (the committed ``otel-collector/config.yaml``) into Prometheus's OTLP receiver, with the
gateway job not scraped. Every recording rule, alert rule expression and dashboard query returns
the same label sets on both paths. ``instance`` names the one replica on each path: its scrape
address, or its ``service.instance.id``, which the scrape path's ``target_info`` pairs with it.
"""

from __future__ import annotations

from collections.abc import Iterator

import yaml

from app.monitoring import render
from tests.support import wait_until

from .arrival import PATHS, SERVICE_NAME
from .conftest import MIN_REQUESTS, POLL, Stack, await_collection
from .test_dashboards import FILES, GRAFANA_VARIABLES, PROVIDER_CHOICES, exprs, load, substitute
from .test_e2e import gateway_alerts, prometheus_alerts

LabelSets = set[frozenset[tuple[str, str]]]
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}]}
INCIDENT = {("ProviderSuccessRateLow", "warning", "openai", "chat"),
            ("ProviderSuccessRateLow", "critical", "openai", "chat")}


def replica_ids(stack: Stack) -> dict[str, str]:
    """The gateway's scrape address (its ``instance`` on the scrape path) -> its
    ``service.instance.id`` (its ``instance`` on the OTLP path)."""
    [info] = stack.query('target_info{job="gateway"}')
    return {info["metric"]["instance"]: info["metric"]["service_instance_id"]}


def label_sets(stack: Stack, path: str, expr: str, ids: dict[str, str]) -> LabelSets:
    found: LabelSets = set()
    for sample in stack.query(expr, path):
        labels = dict(sample["metric"])
        if path == "scrape" and "instance" in labels:
            labels["instance"] = ids[labels["instance"]]
        found.add(frozenset(labels.items()))
    return found


def rule_queries(stack: Stack) -> Iterator[tuple[str, str]]:
    """(what, PromQL) of every recording rule (its series and its expression) and alert rule."""
    (group,) = yaml.safe_load((stack.rules_dir / render.PROMETHEUS_RULES).read_text())["groups"]
    for rule in group["rules"]:
        if "record" in rule:
            yield f"recorded {rule['record']}", rule["record"]
            yield f"expression of {rule['record']}", rule["expr"]
        else:
            yield f"alert {rule['alert']} ({rule['labels']['severity']})", rule["expr"]


def dashboard_queries() -> Iterator[tuple[str, str]]:
    """(where, PromQL) of every panel and annotation, for each provider the drill-down may show."""
    for path in FILES:
        choices = PROVIDER_CHOICES if path.stem == "provider" else [("", "")]
        for where, expr in exprs(load(path)):
            for provider, operation in choices:
                variables = {**GRAFANA_VARIABLES, "$provider": provider, "$operation": operation}
                yield f"{path.stem}: {where} [{provider}.{operation}]", substitute(expr, variables)


def same_on_both_paths(stack: Stack, queries: list[tuple[str, str]]) -> dict[str, LabelSets]:
    """Each query's label sets, once both paths return the same for all of them (they are
    collected a second apart, so one may lag behind the other for a moment). One look at all the
    dashboards' queries takes about 15 s on a busy machine: the timeout allows a few."""
    ids = replica_ids(stack)
    differing: list[tuple[str, LabelSets, LabelSets]] = []

    def agree() -> dict[str, LabelSets] | None:
        differing.clear()
        found = {}
        for what, expr in queries:
            scrape, otlp = (label_sets(stack, path, expr, ids) for path in PATHS)
            if scrape != otlp:
                differing.append((what, scrape, otlp))
            found[what] = scrape
        return None if differing else found

    return wait_until(agree, 60, lambda: f"both paths to agree; differing: {differing}", POLL)


def test_the_paths_carry_the_gateway_as_their_resource_says(stack: Stack) -> None:
    """Scraped: ``job`` is the scrape job and ``instance`` the address. Over OTLP: ``job`` is
    ``service.name`` and ``instance`` ``service.instance.id``; nothing scrapes the gateway."""
    ids = replica_ids(stack)
    [(address, instance_id)] = ids.items()
    assert address == stack.gateway.url.removeprefix("http://")
    [info] = stack.query("target_info", "otlp")
    assert (info["metric"]["job"], info["metric"]["instance"]) == (SERVICE_NAME, instance_id)
    assert stack.query('up{job="gateway"}', "otlp") == []
    names = {path: {s["metric"]["__name__"] for s in stack.query('{__name__=~"provider_.+|gateway_.+|gen_ai_.+"}',
                                                                    path)} for path in PATHS}
    assert names["scrape"] == names["otlp"], "the same metric names after OTLP translation"
    assert {"provider_circuit_state", "gateway_state_backend_up", "provider_client_rejections_total",
            "provider_client_request_duration_seconds_bucket"} <= names["otlp"]


def test_an_incident_fires_the_same_alerts_on_both_paths_as_in_the_gateway(stack: Stack) -> None:
    """Failing chat calls (one first, so that both paths hold the error series before the rest):
    the same alerts fire in both Prometheus and in /health/alerts."""
    stack.gateway.fault("openai", operation="chat", error_rate=1.0)
    try:
        for n in range(2 * MIN_REQUESTS + 1):
            assert stack.gateway.client.post("/v1/chat/completions", json=CHAT).status_code == 502
            if n % 4 == 0:
                await_collection(stack)
    finally:
        stack.gateway.clear_faults()
    for path in PATHS:
        wait_until(lambda p=path: prometheus_alerts(stack, path=p) >= INCIDENT, 30,  # type: ignore[misc]
                   f"the incident's alerts to fire on the {path} path", POLL)

    def everywhere() -> list[set[tuple[str, str, str, str]]]:
        return [*(prometheus_alerts(stack, path=p) for p in PATHS), gateway_alerts(stack)]

    def agree() -> bool:
        scrape, otlp, gateway = everywhere()
        return scrape == otlp == gateway

    wait_until(agree, 20, lambda: f"both paths and the gateway to agree: {everywhere()}", POLL)


def test_every_rule_finds_the_same_series_on_both_paths(stack: Stack) -> None:
    found = same_on_both_paths(stack, list(rule_queries(stack)))
    recorded = {what: sets for what, sets in found.items() if not what.startswith("alert ")}
    assert all(recorded.values()), [what for what, sets in recorded.items() if not sets]
    alerting = [what for what, sets in found.items() if what.startswith("alert ") and sets]
    assert alerting, "some alert expression holds (the incident's), on both paths"


def test_every_dashboard_query_finds_the_same_series_on_both_paths(stack: Stack) -> None:
    found = same_on_both_paths(stack, list(dashboard_queries()))
    overview = [what for what, sets in found.items() if what.startswith("overview") and not sets]
    assert overview == [], "every overview query has series"
