"""``python -m app stack up`` as a user runs it: one JSON line of base URLs that answer (a span sent
to the OTLP/gRPC endpoint reaches Jaeger, a log record sent to the OTLP/HTTP one reaches the log
sink's file in ``--dir``), then on SIGTERM every program it started is gone; exit 2, naming the
build script, where the programs are not built."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from app.stack import logsink
from app.stack.binaries import CHECKOUT, STACK_BIN_VARIABLE
from app.stack.processes import LOG_SINK_FILE
from tests.support import stack_binary, wait_until

from .otlp import jaeger_trace

KEYS = ["otlp_http", "otlp_grpc", "jaeger", "prometheus", "alertmanager"]
PROGRAMS = {"otelcol", "jaeger", "prometheus", "alertmanager"}
TRACE_ID, SPAN_ID = bytes.fromhex("5b8efff798038103d269b633813fc60c"), bytes.fromhex("eee19b7ec3c1b174")


def stack_up(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "app", "stack", "up", "--gateway", "http://127.0.0.1:9", *args],
                            cwd=CHECKOUT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OTELCOL_BATCH_TIMEOUT": "100ms", **(env or {})})


def first_line(process: subprocess.Popen[str], timeout: float) -> str:
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    assert ready, f"no line from stack up in {timeout:g} s"
    return process.stdout.readline()


def children(pid: int) -> dict[int, str]:
    """The processes ``pid`` started, by their program name."""
    found = (Path(f"/proc/{pid}/task/{pid}/children").read_text()).split()
    return {int(child): Path(f"/proc/{child}/comm").read_text().strip() for child in found}


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], dict[str, str]]]:
    process = stack_up("--json", "--dir", str(tmp_path))
    try:
        yield process, json.loads(first_line(process, 90))
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_stack_up_prints_its_endpoints_and_stops_everything_on_sigterm(
    stack: tuple[subprocess.Popen[str], dict[str, str]], tmp_path: Path,
) -> None:
    process, endpoints = stack
    assert list(endpoints) == KEYS
    for name in ("jaeger", "prometheus", "alertmanager"):
        ready = "/api/services" if name == "jaeger" else "/-/ready"
        assert httpx.get(endpoints[name] + ready, timeout=5).status_code == 200, name

    # Through the Collector: a span over gRPC into Jaeger, a log record over HTTP into the sink.
    span = Span(trace_id=TRACE_ID, span_id=SPAN_ID, name="stack up", kind=Span.SPAN_KIND_SERVER,
                start_time_unix_nano=1, end_time_unix_nano=2)
    with grpc.insecure_channel(endpoints["otlp_grpc"].removeprefix("http://")) as channel:
        trace_service_pb2_grpc.TraceServiceStub(channel).Export(  # type: ignore[no-untyped-call]
            trace_service_pb2.ExportTraceServiceRequest(resource_spans=[
                ResourceSpans(scope_spans=[ScopeSpans(spans=[span])])]), timeout=10)
    record = LogRecord(body=AnyValue(string_value="hello from stack up"), trace_id=TRACE_ID, span_id=SPAN_ID)
    logs = ExportLogsServiceRequest(resource_logs=[ResourceLogs(scope_logs=[ScopeLogs(log_records=[record])])])
    sent = httpx.post(endpoints["otlp_http"] + "/v1/logs", content=logs.SerializeToString(), timeout=10,
                      headers={"content-type": "application/x-protobuf"})
    assert sent.status_code == 200, sent.text
    [stored] = jaeger_trace(endpoints["jaeger"], TRACE_ID.hex(), 1)
    assert stored.name == "stack up"
    [logged] = wait_until(lambda: logsink.read(tmp_path / LOG_SINK_FILE), 15, "the record in the sink's file", 0.1)
    assert (logged["body"], logged["trace_id"], logged["span_id"]) == ("hello from stack up", TRACE_ID.hex(),
                                                                        SPAN_ID.hex())

    programs = children(process.pid)
    assert set(programs.values()) == PROGRAMS
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    assert process.stdout is not None and process.stdout.read() == "", "one line only"
    for pid in programs:
        assert not Path(f"/proc/{pid}").exists(), f"{programs[pid]} ({pid}) still runs"


def test_stack_up_exits_2_naming_the_build_where_nothing_is_built(tmp_path: Path) -> None:
    process = stack_up("--json", env={STACK_BIN_VARIABLE: str(tmp_path)})
    out, err = process.communicate(timeout=60)
    assert process.returncode == 2 and out == ""
    assert "is not built" in err and "scripts/build-stack.sh" in err and str(tmp_path) in err


@pytest.mark.parametrize(("program", "directory", "module", "pin", "release"), [
    ("prometheus", "stack/prometheus", "github.com/prometheus/prometheus", "v0.316.0", "3.16.0"),
    ("promtool", "stack/prometheus", "github.com/prometheus/prometheus", "v0.316.0", "3.16.0"),
    ("alertmanager", "stack/alertmanager", "github.com/prometheus/alertmanager", "v0.31.1", "0.31.1"),
    ("amtool", "stack/alertmanager", "github.com/prometheus/alertmanager", "v0.31.1", "0.31.1"),
])
def test_the_built_programs_say_their_release(program: str, directory: str, module: str, pin: str,
                                              release: str) -> None:
    """``--version`` names the release the pinned module is (Prometheus's module v0.316.0 is 3.16.0),
    as an operator checking what runs expects; the build script sets it from the go.mod."""
    pinned = next(line.split()[1] for line in (CHECKOUT / directory / "go.mod").read_text().splitlines()
                  if line.split()[:1] == [module])
    assert pinned == pin, f"{module} is now {pinned}: update this test's pin and release with it"
    shown = subprocess.run([stack_binary(program), "--version"], capture_output=True, text=True, check=True)
    assert f"version {release} " in shown.stdout + shown.stderr
