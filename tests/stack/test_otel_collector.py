"""otel-collector/config.yaml: the built Collector validates it (and rejects a component the
distribution lacks; the built Jaeger validates stack/jaeger/config.yaml), and offline, every
pipeline (traces, metrics, logs) names defined components, memory_limiter comes first, each
endpoint is ``${env:NAME:-default}`` whose default is a compose service, and compose runs the
images of the programs built under stack/ with the same files."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from tests.support import stack_binary

from .conftest import REPO

CONFIG_FILE = REPO / "otel-collector" / "config.yaml"
CONFIG: dict[str, Any] = yaml.safe_load(CONFIG_FILE.read_text())
COMPOSE: dict[str, Any] = yaml.safe_load((REPO / "compose.yaml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
SECTIONS = ("receivers", "processors", "exporters")
ENV_REFERENCE = re.compile(r"\$\{env:(\w+):-([^}]*)\}")
JAEGER_V2_RELEASE = {"v1.75.0": "2.12.0"}
"""Jaeger publishes each release as a pair: the Go module's v1 version and the v2 image's version."""


def _default(value: str) -> str:
    """The default of a ``${env:NAME:-default}`` value (every endpoint is written so)."""
    match = ENV_REFERENCE.fullmatch(value)
    assert match, f"{value}: not ${{env:NAME:-default}}"
    return match.group(2)


def _port(endpoint: str) -> int:
    return int(_default(endpoint).rsplit(":", 1)[1])


def _published(service: str) -> set[int]:
    return {int(str(p).split(":")[-1]) for p in SERVICES[service].get("ports", [])}


def _validate(config: Path, program: str = "otelcol") -> subprocess.CompletedProcess[str]:
    return subprocess.run([stack_binary(program), "validate", f"--config={config}"], check=False,
                          capture_output=True, text=True, timeout=60)


def test_the_built_collector_validates_the_config_and_rejects_components_it_lacks(tmp_path: Path) -> None:
    result = _validate(CONFIG_FILE)
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(CONFIG_FILE.read_text())
    config["exporters"]["prometheus"] = {"endpoint": "0.0.0.0:8889"}  # the contrib exporter, not built in
    config["service"]["pipelines"]["metrics"]["exporters"] = ["prometheus"]
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    result = _validate(tmp_path / "config.yaml")
    assert result.returncode != 0 and "prometheus" in result.stderr


def test_the_built_jaeger_validates_its_config() -> None:
    result = _validate(REPO / "stack" / "jaeger" / "config.yaml", "jaeger")
    assert result.returncode == 0, result.stderr


def test_pipelines_use_defined_components() -> None:
    service = CONFIG["service"]
    assert set(service["pipelines"]) == {"traces", "metrics", "logs"}
    for name, pipeline in service["pipelines"].items():
        for section in SECTIONS:
            assert pipeline[section], f"{name} has no {section}"
            for component in pipeline[section]:
                assert component in CONFIG[section], f"{name}: {component} is not defined in {section}"
        assert pipeline["processors"][0] == "memory_limiter", f"{name}: memory_limiter must come first"
        assert "batch" in pipeline["processors"], name
    for extension in service["extensions"]:
        assert extension in CONFIG["extensions"], extension
    defined = {(section, c) for section in SECTIONS for c in CONFIG[section]}
    used = {(section, c) for p in service["pipelines"].values() for section in SECTIONS for c in p[section]}
    assert defined == used, "components defined but not used"


def test_exporters_per_signal_default_to_compose_services() -> None:
    pipelines, exporters = CONFIG["service"]["pipelines"], CONFIG["exporters"]
    (traces,) = pipelines["traces"]["exporters"]
    assert traces.split("/")[0] == "otlp_grpc"
    host, port = _default(exporters[traces]["endpoint"]).rsplit(":", 1)
    assert host == "jaeger" and port == "4317", "OTLP gRPC into Jaeger"
    (metrics,) = pipelines["metrics"]["exporters"]
    assert metrics.split("/")[0] == "otlp_http"
    prometheus = urlsplit(_default(exporters[metrics]["metrics_endpoint"]))
    assert prometheus.hostname == "prometheus" and prometheus.path == "/api/v1/otlp/v1/metrics", \
        "OTLP/HTTP into Prometheus 3's OTLP receiver"
    (logs,) = pipelines["logs"]["exporters"]
    assert logs.split("/")[0] == "otlp_http"
    loki = urlsplit(_default(exporters[logs]["endpoint"]))
    assert loki.hostname == "loki" and loki.path == "/otlp", "OTLP/HTTP into Loki's OTLP endpoint"
    assert loki.port in _published("loki")
    for service in ("jaeger", "loki"):
        assert SERVICES["otel-collector"]["depends_on"][service]["condition"] == "service_healthy"


def test_compose_sets_each_exporter_variable_to_its_default() -> None:
    """compose.yaml names the variables the exporters read, with the values the defaults have."""
    environment = SERVICES["otel-collector"]["environment"]
    for exporter in CONFIG["exporters"].values():
        for value in (exporter.get("endpoint"), exporter.get("metrics_endpoint")):
            if value is not None:
                name, default = ENV_REFERENCE.fullmatch(value).groups()  # type: ignore[union-attr]
                assert environment[name] == default, name


def test_ports_match_compose() -> None:
    protocols = CONFIG["receivers"]["otlp"]["protocols"]
    grpc, http = protocols["grpc"]["endpoint"], protocols["http"]["endpoint"]
    assert _port(grpc) == 4317 and _port(http) == 4318
    assert {_port(grpc), _port(http), _port(CONFIG["extensions"]["health_check"]["endpoint"])} \
        <= _published("otel-collector")
    for endpoint in (grpc, http):
        assert _default(endpoint).startswith("0.0.0.0:"), "reachable from the other containers"
    gateway = urlsplit(SERVICES["gateway"]["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"])
    assert gateway.port == _port(http), "the gateway speaks OTLP http/protobuf"
    mount = "./otel-collector/config.yaml:/etc/otelcol-contrib/config.yaml:ro"
    assert mount in SERVICES["otel-collector"]["volumes"]


def test_compose_images_are_the_releases_of_the_built_programs() -> None:
    """The Collector image is the contrib release of the built distribution's version; Jaeger's is
    the v2 release of the module built, with the same config file mounted."""
    builder = yaml.safe_load((REPO / "stack" / "otelcol" / "builder-config.yaml").read_text())
    assert SERVICES["otel-collector"]["image"] == f"otel/opentelemetry-collector-contrib:{builder['dist']['version']}"
    go_mod = (REPO / "stack" / "jaeger" / "go.mod").read_text()
    module = re.search(r"github\.com/jaegertracing/jaeger (v[\d.]+)", go_mod)
    assert module, "stack/jaeger/go.mod requires github.com/jaegertracing/jaeger"
    jaeger = SERVICES["jaeger"]
    assert jaeger["image"] == f"jaegertracing/jaeger:{JAEGER_V2_RELEASE[module.group(1)]}"
    assert "./stack/jaeger/config.yaml:/etc/jaeger/config.yaml:ro" in jaeger["volumes"]
    assert jaeger["command"] == ["--config=/etc/jaeger/config.yaml"]
    jaeger_config = yaml.safe_load((REPO / "stack" / "jaeger" / "config.yaml").read_text())
    query = jaeger_config["extensions"]["jaeger_query"]["http"]["endpoint"]
    assert _port(query) in _published("jaeger"), "the query API and UI"
