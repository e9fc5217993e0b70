"""compose.yaml, checked offline (no container engine here): valid against the Compose
Specification's JSON schema (as vendored by the check-jsonschema package), every mounted file
exists, and the services, ports and URLs agree with the configuration files they mount."""

from __future__ import annotations

import importlib.resources
import json
import re
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import yaml

from .conftest import ALERTS, REPO

COMPOSE: dict[str, Any] = yaml.safe_load((REPO / "compose.yaml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]


def compose_schema() -> dict[str, Any]:
    schema = importlib.resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    data: dict[str, Any] = json.loads(schema.read_text())
    return data


def published(service: str) -> set[int]:
    return {int(str(p).split(":")[-1]) for p in SERVICES[service].get("ports", [])}


def mounts(service: str) -> dict[str, str]:
    """Container path -> host path of the service's bind mounts."""
    found = {}
    for volume in SERVICES[service].get("volumes", []):
        host, container, *_ = volume.split(":")
        if host.startswith("./"):
            found[container] = host
    return found


def test_valid_against_the_compose_specification() -> None:
    validator = jsonschema.Draft202012Validator(compose_schema())
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(COMPOSE)]
    assert not errors
    broken = {**COMPOSE, "services": {**SERVICES, "gateway": {**SERVICES["gateway"], "port": ["8000"]}}}
    assert not validator.is_valid(broken), "the schema rejects unknown keys"


def test_every_mounted_file_exists() -> None:
    for name in SERVICES:
        for host in mounts(name).values():
            assert (REPO / host).exists(), f"{name} mounts {host}"
    assert (REPO / "Dockerfile").exists() and SERVICES["gateway"]["build"] == "."


def test_images_are_pinned_and_every_service_has_a_health_check() -> None:
    for name, service in SERVICES.items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no health check"
        if "image" in service and "build" not in service:
            assert re.fullmatch(r"[\w./-]+:v?\d+(\.\d+)*[\w.-]*", service["image"]), service["image"]
    for name, service in SERVICES.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in SERVICES, f"{name} depends on unknown {dependency}"


def test_gateway_image_and_environment() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    assert dockerfile.startswith("#") and "FROM python:3.11-slim" in dockerfile
    assert "pip install --no-cache-dir ." in dockerfile
    assert '["python", "-m", "app", "serve", "--host", "0.0.0.0", "--port", "8000"]' in dockerfile
    assert 8000 in published("gateway")
    env = SERVICES["gateway"]["environment"]
    otlp = urlsplit(env["OTEL_EXPORTER_OTLP_ENDPOINT"])
    assert otlp.hostname == "otel-collector" and otlp.port in published("otel-collector")
    alertmanager = urlsplit(env["ALERTMANAGER_URL"])
    assert alertmanager.hostname == "alertmanager" and alertmanager.port in published("alertmanager")


def test_prometheus_and_alertmanager_mounts_agree_with_their_configs() -> None:
    assert mounts("prometheus") == {"/etc/prometheus": "./alerts/prometheus"}
    command = " ".join(SERVICES["prometheus"]["command"])
    assert "--config.file=/etc/prometheus/prometheus.yml" in command
    config = yaml.safe_load((ALERTS / "prometheus" / "prometheus.yml").read_text())
    assert all((ALERTS / "prometheus" / f).exists() for f in config["rule_files"])
    targets = [t for job in config["scrape_configs"] for s in job["static_configs"] for t in s["targets"]]
    alertmanagers = config["alerting"]["alertmanagers"]
    targets += [t for am in alertmanagers for s in am["static_configs"] for t in s["targets"]]
    for target in targets:
        host, port = target.split(":")
        assert host == "localhost" or (host in SERVICES and int(port) in published(host)), target
    assert "gateway:8000" in targets, "Prometheus scrapes the gateway's /metrics"

    config_file = "alertmanager/alertmanager.yml"
    assert mounts("alertmanager") == {f"/etc/{config_file}": f"./alerts/{config_file}"}
    receivers = yaml.safe_load((ALERTS / "alertmanager" / "alertmanager.yml").read_text())["receivers"]
    for hook in (w for r in receivers for w in r["webhook_configs"]):
        url = urlsplit(hook["url"])
        assert url.hostname == "webhook-sink" and url.port in published("webhook-sink"), hook["url"]
    assert mounts("webhook-sink") == {"/sink/webhook_sink.py": "./alerts/alertmanager/webhook_sink.py"}


def test_grafana_provisioning_mounts() -> None:
    grafana = mounts("grafana")
    assert grafana["/etc/grafana/provisioning/datasources"] == "./dashboards/provisioning/datasources"
    assert grafana["/etc/grafana/provisioning/dashboards"] == "./dashboards/provisioning/dashboards"
    assert grafana["/etc/grafana/provisioning/alerting"] == "./alerts/grafana"
    datasources = yaml.safe_load((REPO / "dashboards/provisioning/datasources/prometheus.yaml").read_text())
    for datasource in datasources["datasources"]:
        url = urlsplit(datasource["url"])
        assert url.hostname in SERVICES and url.port in published(url.hostname), datasource["url"]
