"""deploy/kubernetes, checked offline as strictly as this machine allows: ``kubectl kustomize`` builds
the base; every built-in object passes kubernetes-validate's strict schemas (unknown fields are
errors) for the oldest and newest Kubernetes we target; the Prometheus Operator objects round-trip
through the operator's generated models (cloudcoil-models-prometheus-operator: types checked, and
any field the CRD does not know would be dropped, so the round trip must be exact); the
PrometheusRule is the rendered rule group, passes promtool's checks and the same promtool unit
tests as alerts/prometheus/rules.yml; and the objects agree with each other and with the gateway's
settings (selectors, ports, probes, grace periods, secrets)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from cloudcoil.models.prometheus_operator import v1 as operator

from app.config import load_settings
from app.monitoring import render
from tests.support import stack_binary

from .conftest import ALERTS, REPO, run

BASE = REPO / "deploy" / "kubernetes"
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")
"""The oldest Kubernetes we target (the ``preStop`` ``sleep`` action) and kubernetes-validate's newest."""


def kubectl() -> str:
    """Debian's kubectl (kubernetes-client, which scripts/test.sh installs), not one of the stack's
    programs; fails the test (never skips) without it."""
    found = shutil.which("kubectl")
    if found is None:
        pytest.fail("kubectl not found: install Debian's kubernetes-client (scripts/test.sh does)")
    return found


def built() -> list[dict[str, Any]]:
    result = run(kubectl(), "kustomize", BASE)
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


DOCS = built()


def one(kind: str, component: str | None = None) -> dict[str, Any]:
    found = [d for d in DOCS if d["kind"] == kind and (
        component is None or d["metadata"]["labels"].get("app.kubernetes.io/component") == component)]
    assert len(found) == 1, (kind, component, found)
    return found[0]


def test_the_base_builds_every_listed_resource() -> None:
    listed = yaml.safe_load((BASE / "kustomization.yaml").read_text())["resources"]
    assert sorted(listed) == sorted(p.name for p in BASE.glob("*.yaml") if p.name != "kustomization.yaml")
    assert sorted(d["kind"] for d in DOCS) == sorted([
        "ConfigMap", "Deployment", "Deployment", "Service", "Service", "PodDisruptionBudget",
        "HorizontalPodAutoscaler", "ServiceMonitor", "PrometheusRule"])


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_built_in_objects_pass_the_strict_kubernetes_schemas(version: str) -> None:
    checked = 0
    for doc in DOCS:
        if doc["apiVersion"].startswith("monitoring.coreos.com/"):
            continue
        kubernetes_validate.validate(doc, version, strict=True)
        checked += 1
    assert checked == 7


def test_strict_schemas_reject_an_unknown_field() -> None:
    """The check above can fail: a misspelt field is an error, not ignored."""
    deployment = one("Deployment", "gateway")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    broken = {**deployment, "spec": {**deployment["spec"], "template": {
        **deployment["spec"]["template"], "spec": {
            **deployment["spec"]["template"]["spec"], "containers": [{**container, "readinesProbe_": {}}]}}}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[-1], strict=True)


def operator_round_trip(doc: dict[str, Any]) -> dict[str, Any]:
    model = getattr(operator, doc["kind"]).model_validate(doc)
    dumped: dict[str, Any] = model.model_dump(by_alias=True, exclude_none=True, mode="json")
    return dumped


@pytest.mark.parametrize("kind", ["ServiceMonitor", "PrometheusRule"])
def test_operator_objects_match_their_crd_models_exactly(kind: str) -> None:
    doc = one(kind)
    assert doc["apiVersion"] == "monitoring.coreos.com/v1"
    assert operator_round_trip(doc) == doc


def test_the_crd_check_notices_an_unknown_field() -> None:
    monitor = one("ServiceMonitor")
    endpoint = {**monitor["spec"]["endpoints"][0], "scrapeInterval": "15s"}  # the field is `interval`
    broken = {**monitor, "spec": {**monitor["spec"], "endpoints": [endpoint]}}
    assert operator_round_trip(broken) != broken


def test_the_prometheus_rule_is_the_rendered_rule_group(tmp_path: Path) -> None:
    committed = yaml.safe_load((ALERTS / render.PROMETHEUS_RULES).read_text())
    assert one("PrometheusRule")["spec"] == committed
    rules = tmp_path / "prometheus" / "rules.yml"
    rules.parent.mkdir()
    rules.write_text(yaml.safe_dump(one("PrometheusRule")["spec"]))
    checked = run(stack_binary("promtool"), "check", "rules", "--lint=all", "--lint-fatal", rules)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # The promtool unit tests of the rule files, run on the PrometheusRule's rules.
    tests = tmp_path / "tests"
    tests.mkdir()
    for path in sorted((ALERTS / "tests").glob("*.yml")):
        # The error-budget cases on the scaled profile (rules-scaled.yml) test another rule file.
        if yaml.safe_load(path.read_text())["rule_files"] == ["../prometheus/rules.yml"]:
            (tests / path.name).write_text(path.read_text())
    result = run(stack_binary("promtool"), "test", "rules", *sorted(tests.glob("*.yml")))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(list(tests.glob("*.yml")))


def test_render_check_catches_a_drifted_prometheus_rule(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["render", "--out", str(tmp_path / "alerts"), "--kubernetes-out", str(tmp_path / "k8s")]
    assert render.main(args) == 0
    assert render.main([*args, "--check"]) == 0
    rule = tmp_path / "k8s" / render.KUBERNETES_RULES
    rule.write_text(rule.read_text().replace("interval: 15s", "interval: 30s"))
    capsys.readouterr()
    assert render.main([*args, "--check"]) == 1
    assert "+    interval: 15s" in capsys.readouterr().out
    # Variants rendered elsewhere (the stack tests' short windows) leave the base alone.
    before = (BASE / render.KUBERNETES_RULES).read_text()
    assert render.main(["render", "--out", str(tmp_path / "variant"), "--window", "30s"]) == 0
    assert (BASE / render.KUBERNETES_RULES).read_text() == before


def container() -> dict[str, Any]:
    [gateway] = one("Deployment", "gateway")["spec"]["template"]["spec"]["containers"]
    return dict(gateway)


def env() -> dict[str, str]:
    """The gateway's environment: the ConfigMap, plus a placeholder for each secret it references."""
    values = dict(one("ConfigMap")["data"])
    for item in container()["env"]:
        if "value" in item:
            values[item["name"]] = item["value"]
        elif "secretKeyRef" in item["valueFrom"]:
            ref = item["valueFrom"]["secretKeyRef"]
            if not ref.get("optional"):
                values[item["name"]] = f"placeholder-{ref['key'].lower()}"
    return values


def test_the_gateway_runs_as_a_fleet_with_probes_and_a_shared_redis() -> None:
    deployment = one("Deployment", "gateway")
    assert deployment["spec"]["replicas"] >= 2
    gateway = container()
    assert gateway["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert gateway["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert {p["name"]: p["containerPort"] for p in gateway["ports"]} == {"http": 8000}
    assert gateway["resources"]["requests"].keys() == {"cpu", "memory"} and gateway["resources"]["limits"]["memory"]
    settings = load_settings(env())  # the settings start up with
    assert settings.environment == "production" and settings.metrics_require_auth
    assert settings.state_redis_url == "redis://ai-gateway-redis:6379/0"
    redis_service = one("Service", "redis")
    assert redis_service["metadata"]["name"] == "ai-gateway-redis"
    assert redis_service["spec"]["ports"][0]["port"] == 6379


def test_termination_grace_covers_the_pre_stop_sleep_and_shutdown_grace() -> None:
    pod = one("Deployment", "gateway")["spec"]["template"]["spec"]
    pre_stop = container()["lifecycle"]["preStop"]["sleep"]["seconds"]
    shutdown_grace = load_settings(env()).shutdown_grace
    assert shutdown_grace >= 10
    assert pod["terminationGracePeriodSeconds"] >= pre_stop + shutdown_grace + 1


def test_secrets_come_by_reference_only() -> None:
    config = one("ConfigMap")["data"]
    secret_names = ("API_KEY", "API_KEYS", "PASSWORD", "TOKEN")
    assert not [k for k in config if k.endswith(secret_names)]
    for item in container()["env"]:
        if item["name"].endswith(secret_names):
            assert item["valueFrom"]["secretKeyRef"]["name"] == "ai-gateway-secrets", item
    monitor = one("ServiceMonitor")["spec"]["endpoints"][0]
    assert monitor["authorization"]["credentials"] == {"name": "ai-gateway-secrets", "key": "ADMIN_API_KEY"}


def test_service_pdb_hpa_and_monitor_select_the_gateway_pods() -> None:
    pod_labels = one("Deployment", "gateway")["spec"]["template"]["metadata"]["labels"]
    service = one("Service", "gateway")
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert one("PodDisruptionBudget")["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert one("PodDisruptionBudget")["spec"]["minAvailable"] < one("Deployment", "gateway")["spec"]["replicas"]
    hpa = one("HorizontalPodAutoscaler")["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "ai-gateway"}
    assert hpa["minReplicas"] >= 2 and hpa["maxReplicas"] > hpa["minReplicas"]
    monitor = one("ServiceMonitor")["spec"]
    assert monitor["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert {e["port"] for e in monitor["endpoints"]} <= {p["name"] for p in service["spec"]["ports"]}
    assert {e["path"] for e in monitor["endpoints"]} == {"/metrics"}
