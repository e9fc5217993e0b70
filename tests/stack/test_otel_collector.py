"""otel-collector/config.yaml, checked offline (the Collector does not run here): every pipeline
(traces, metrics, logs) names defined components, memory_limiter comes first, and the ports and
hosts agree with compose.yaml."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import yaml

from .conftest import REPO

CONFIG: dict[str, Any] = yaml.safe_load((REPO / "otel-collector" / "config.yaml").read_text())
COMPOSE: dict[str, Any] = yaml.safe_load((REPO / "compose.yaml").read_text())
SECTIONS = ("receivers", "processors", "exporters")


def _port(endpoint: str) -> int:
    return int(endpoint.rsplit(":", 1)[1])


def _published(service: str) -> set[int]:
    return {int(str(p).split(":")[-1]) for p in COMPOSE["services"][service].get("ports", [])}


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


def test_exporters_per_signal() -> None:
    pipelines = CONFIG["service"]["pipelines"]
    assert pipelines["metrics"]["exporters"] == ["prometheus"]
    (traces,) = pipelines["traces"]["exporters"]
    assert traces.split("/")[0] == "otlp"
    target = CONFIG["exporters"][traces]["endpoint"]
    host, port = target.rsplit(":", 1)
    assert host in COMPOSE["services"] and port == "4317", "OTLP gRPC into the trace backend"
    (logs,) = pipelines["logs"]["exporters"]
    assert logs.split("/")[0] == "otlphttp"
    loki = urlsplit(CONFIG["exporters"][logs]["endpoint"])
    assert loki.hostname in COMPOSE["services"] and loki.path == "/otlp", "OTLP/HTTP into Loki's OTLP endpoint"
    assert loki.port in _published(str(loki.hostname))
    assert COMPOSE["services"]["otel-collector"]["depends_on"][loki.hostname]["condition"] == "service_healthy"


def test_ports_match_compose() -> None:
    protocols = CONFIG["receivers"]["otlp"]["protocols"]
    assert _port(protocols["grpc"]["endpoint"]) == 4317 and _port(protocols["http"]["endpoint"]) == 4318
    endpoints = [protocols["grpc"]["endpoint"], protocols["http"]["endpoint"],
                 CONFIG["extensions"]["health_check"]["endpoint"],
                 CONFIG["exporters"]["prometheus"]["endpoint"]]
    ports = {_port(e) for e in endpoints}
    assert ports <= _published("otel-collector")
    for endpoint in (protocols["grpc"]["endpoint"], protocols["http"]["endpoint"]):
        assert endpoint.startswith("0.0.0.0:"), "reachable from the other containers"
    gateway = urlsplit(COMPOSE["services"]["gateway"]["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"])
    assert gateway.port == _port(protocols["http"]["endpoint"]), "the gateway speaks OTLP http/protobuf"
    mount = "./otel-collector/config.yaml:/etc/otelcol-contrib/config.yaml:ro"
    assert mount in COMPOSE["services"]["otel-collector"]["volumes"]
