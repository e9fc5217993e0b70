"""Minimal OTLP receivers on loopback (HTTP/protobuf and gRPC) that decode what they receive (attribute
values as :mod:`app.stack.logsink` reads them)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.proto.metrics.v1.metrics_pb2 import Metric
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from app.stack.logsink import attributes
from tests.support import wait_until


@dataclass
class Received:
    """Everything a receiver decoded, with the HTTP paths it was posted to."""

    traces: list[trace_service_pb2.ExportTraceServiceRequest] = field(default_factory=list)
    metrics: list[metrics_service_pb2.ExportMetricsServiceRequest] = field(default_factory=list)
    logs: list[logs_service_pb2.ExportLogsServiceRequest] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)

    def spans(self) -> list[tuple[dict[str, Any], Span]]:
        """(resource attributes, span) for every span received."""
        return [(attributes(rs.resource.attributes), span) for request in self.traces
                for rs in request.resource_spans for ss in rs.scope_spans for span in ss.spans]

    def log_records(self) -> list[tuple[dict[str, Any], LogRecord]]:
        """(resource attributes, log record) for every log record received."""
        return [(attributes(rl.resource.attributes), record) for request in self.logs
                for rl in request.resource_logs for sl in rl.scope_logs for record in sl.log_records]

    def metric(self, name: str) -> list[Metric]:
        return [m for request in self.metrics for rm in request.resource_metrics for sm in rm.scope_metrics
                for m in sm.metrics if m.name == name]

    def wait(self, predicate: Callable[[Received], bool], timeout: float = 10.0) -> bool:
        return wait_until(lambda: predicate(self), timeout, "the OTLP export")


@contextlib.contextmanager
def http_receiver() -> Iterator[tuple[str, Received]]:
    """An OTLP/HTTP receiver; yields its base URL (for ``OTEL_EXPORTER_OTLP_ENDPOINT``)."""
    received = Received()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            received.paths.append(self.path)
            if self.path.endswith("/v1/traces"):
                received.traces.append(trace_service_pb2.ExportTraceServiceRequest.FromString(body))
            elif self.path.endswith("/v1/metrics"):
                received.metrics.append(metrics_service_pb2.ExportMetricsServiceRequest.FromString(body))
            elif self.path.endswith("/v1/logs"):
                received.logs.append(logs_service_pb2.ExportLogsServiceRequest.FromString(body))
            self.send_response(200)
            self.send_header("content-type", "application/x-protobuf")
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def grpc_receiver() -> Iterator[tuple[str, Received]]:
    """An OTLP/gRPC receiver (insecure); yields its ``http://`` endpoint."""
    received = Received()

    class Traces(trace_service_pb2_grpc.TraceServiceServicer):
        def Export(self, request: Any, context: Any) -> Any:
            received.traces.append(request)
            return trace_service_pb2.ExportTraceServiceResponse()

    class Metrics(metrics_service_pb2_grpc.MetricsServiceServicer):
        def Export(self, request: Any, context: Any) -> Any:
            received.metrics.append(request)
            return metrics_service_pb2.ExportMetricsServiceResponse()

    class Logs(logs_service_pb2_grpc.LogsServiceServicer):
        def Export(self, request: Any, context: Any) -> Any:
            received.logs.append(request)
            return logs_service_pb2.ExportLogsServiceResponse()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    logs_service_pb2_grpc.add_LogsServiceServicer_to_server(Logs(), server)  # type: ignore[no-untyped-call]
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Traces(), server)  # type: ignore[no-untyped-call]
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(Metrics(), server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"http://127.0.0.1:{port}", received
    finally:
        server.stop(grace=None)
