"""compose.yaml, checked offline (no container engine here): valid against the Compose
Specification's JSON schema (as vendored by the check-jsonschema package), every mounted file
exists, and the services, ports and URLs agree with the configuration files they mount."""

from __future__ import annotations

import importlib.resources
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml
from opentelemetry.sdk.metrics import MeterProvider

from app.config import Secret, load_settings
from app.telemetry.otlp import otlp_metric_reader, otlp_span_exporter

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


def default_value(text: str) -> str:
    """``text`` with Compose's ``${VAR:-default}`` interpolated as if ``VAR`` were unset."""
    return re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", text)


def secrets(service: str) -> dict[str, str]:
    """Container path -> host file of the service's secrets (short syntax: /run/secrets/NAME)."""
    found = {}
    for secret in SERVICES[service].get("secrets", []):
        source, target = (secret, secret) if isinstance(secret, str) else (secret["source"], secret["target"])
        path = target if target.startswith("/") else f"/run/secrets/{target}"
        found[path] = default_value(COMPOSE["secrets"][source]["file"])
    return found


def test_every_mounted_file_exists() -> None:
    for name in SERVICES:
        for host in [*mounts(name).values(), *secrets(name).values()]:
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


def built_version(program: str, module: str) -> str:
    """The version of ``module`` that ``stack/<program>/go.mod`` pins."""
    match = re.search(rf"^\s+{re.escape(module)} (v[\d.]+)", (REPO / "stack" / program / "go.mod").read_text(),
                      re.MULTILINE)
    assert match, (program, module)
    return match.group(1)


def test_prometheus_and_alertmanager_images_are_the_built_versions() -> None:
    """The images are the releases the tests run: Prometheus's Go module v0.3MM.P is release
    3.MM.P (v0.316.0 is 3.16.0); Alertmanager's module and release versions are the same."""
    major, minor, patch = built_version("prometheus", "github.com/prometheus/prometheus").removeprefix("v").split(".")
    assert (major, len(minor)) == ("0", 3) and minor.startswith("3"), "a Prometheus 3 module version"
    assert SERVICES["prometheus"]["image"] == f"prom/prometheus:v3.{int(minor[1:])}.{patch}"
    alertmanager = built_version("alertmanager", "github.com/prometheus/alertmanager")
    assert SERVICES["alertmanager"]["image"] == f"prom/alertmanager:{alertmanager}"


def test_metrics_reach_prometheus_one_way_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Prometheus scrapes /metrics, so the gateway exports no OTLP metrics (the Collector would
    forward them into the same Prometheus, counting every call twice); its OTLP receiver is on
    for the Collector's metrics pipeline all the same."""
    env = SERVICES["gateway"]["environment"]
    assert env["OTEL_METRICS_EXPORTER"] == "none"
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_METRICS_EXPORTER", "OTEL_TRACES_EXPORTER"):
        monkeypatch.setenv(name, env.get(name, ""))
    assert otlp_metric_reader(load_settings({})) is None, "the gateway honours OTEL_METRICS_EXPORTER=none"
    assert otlp_span_exporter(MeterProvider()) is not None, "traces still go over OTLP"
    config = yaml.safe_load((ALERTS / "prometheus" / "prometheus.yml").read_text())
    assert "gateway" in [job["job_name"] for job in config["scrape_configs"]]
    assert "--web.enable-otlp-receiver" in SERVICES["prometheus"]["command"]
    assert config["otlp"] == {"translation_strategy": "UnderscoreEscapingWithSuffixes"}


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


def test_prometheus_sends_the_admin_key_the_gateway_reads_from_the_same_secret() -> None:
    """With METRICS_REQUIRE_AUTH=true, /metrics needs the admin key: Prometheus sends the file the
    gateway takes ADMIN_API_KEY from. The committed placeholder is empty: no key by default."""
    config = yaml.safe_load((ALERTS / "prometheus" / "prometheus.yml").read_text())
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "gateway"]
    authorization = job["authorization"]
    assert authorization["type"] == "Bearer" and set(authorization) == {"type", "credentials_file"}
    # Relative to the config file, so that promtool finds it here and Prometheus in compose.
    credentials = authorization["credentials_file"]
    placeholder = ALERTS / "prometheus" / credentials
    assert placeholder.read_text() == ""
    in_container = f"/etc/prometheus/{credentials}"
    assert in_container == "/etc/prometheus/secrets/admin_api_key"
    assert secrets("prometheus") == {in_container: "./alerts/prometheus/secrets/admin_api_key"}
    assert (REPO / secrets("prometheus")[in_container]).resolve() == placeholder.resolve()
    assert re.fullmatch(r"\$\{ADMIN_API_KEY_FILE:-[^}]+\}", COMPOSE["secrets"]["admin_api_key"]["file"])

    gateway = SERVICES["gateway"]
    assert secrets("gateway") == {"/run/secrets/admin_api_key": secrets("prometheus")[in_container]}
    assert gateway["environment"]["ADMIN_API_KEY_FILE"] == "/run/secrets/admin_api_key"
    assert "ADMIN_API_KEY" not in gateway["environment"], "one source for the key: the secret"
    assert gateway["environment"]["METRICS_REQUIRE_AUTH"] == "${METRICS_REQUIRE_AUTH:-false}"


def test_the_gateway_reads_its_admin_key_from_the_secret_file(tmp_path: Path) -> None:
    """What the gateway's settings make of the secret compose mounts at ADMIN_API_KEY_FILE: the
    committed empty placeholder is no key; a file with a key is that key."""
    placeholder = REPO / "alerts" / "prometheus" / "secrets" / "admin_api_key"
    assert load_settings({"ADMIN_API_KEY_FILE": str(placeholder)}).admin_api_key is None
    key = tmp_path / "admin_api_key"
    key.write_text("s3cret-admin-key\n")
    assert load_settings({"ADMIN_API_KEY_FILE": str(key)}).admin_api_key == Secret("s3cret-admin-key")
    assert SERVICES["gateway"]["command"] == ["python", "-m", "app", "serve", "--host", "0.0.0.0", "--port", "8000"]
