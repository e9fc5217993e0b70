"""A small OTLP/HTTP logs receiver that writes each log record as one JSON line to a file.

``python -m app stack up`` runs it as the Collector's logs destination when no ``--logs`` receiver
(Loki's ``/otlp``, say) is given: Loki's license rules it out here, and a file of JSON lines is
what a person or a test reads back. It takes what the Collector's ``otlp_http`` exporter sends,
``application/x-protobuf`` bodies, gzip-encoded or not, at ``/v1/logs``.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import threading
from collections.abc import Iterable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

LOGS_PATH = "/v1/logs"


def any_value(value: AnyValue) -> Any:
    """An OTLP ``AnyValue`` as plain Python (maps and lists nested); bytes as hex."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "kvlist_value":
        return attributes(value.kvlist_value.values)
    if kind == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if kind == "bytes_value":
        return value.bytes_value.hex()
    return getattr(value, kind)


def attributes(items: Iterable[KeyValue]) -> dict[str, Any]:
    return {kv.key: any_value(kv.value) for kv in items}


def records(request: ExportLogsServiceRequest) -> Iterator[dict[str, Any]]:
    """Every log record of ``request`` as one JSON-ready dict, its resource and scope included."""
    for resource_logs in request.resource_logs:
        resource = attributes(resource_logs.resource.attributes)
        for scope_logs in resource_logs.scope_logs:
            for record in scope_logs.log_records:
                yield {
                    "time_unix_nano": record.time_unix_nano or record.observed_time_unix_nano,
                    "severity_text": record.severity_text,
                    "severity_number": record.severity_number,
                    "event_name": record.event_name,
                    "body": any_value(record.body),
                    "attributes": attributes(record.attributes),
                    "trace_id": record.trace_id.hex(),
                    "span_id": record.span_id.hex(),
                    "scope": scope_logs.scope.name,
                    "resource": resource,
                }


class LogSink(ThreadingHTTPServer):
    """Appends the records posted to ``/v1/logs`` to ``path``, one JSON object per line."""

    daemon_threads = True

    def __init__(self, path: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__((host, port), _Handler)
        self.path = path
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        """The base URL for an OTLP/HTTP exporter's ``endpoint`` (which adds ``/v1/logs``)."""
        return f"http://{self.server_address[0]!s}:{self.server_address[1]}"

    def write(self, request: ExportLogsServiceRequest) -> None:
        lines = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records(request))
        with self.lock, self.path.open("a", encoding="utf-8") as out:
            out.write(lines)


class _Handler(BaseHTTPRequestHandler):
    server: LogSink

    def do_POST(self) -> None:
        if self.path != LOGS_PATH:
            self._answer(404, b"")
            return
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        try:
            if self.headers.get("content-encoding", "").lower() == "gzip":
                body = gzip.decompress(body)
            request = ExportLogsServiceRequest.FromString(body)
        except Exception:  # gzip's or protobuf's decoding error: not an OTLP logs request, nothing written
            self._answer(400, b"")
            return
        self.server.write(request)
        self._answer(200, ExportLogsServiceResponse().SerializeToString())

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def read(path: Path) -> list[dict[str, Any]]:
    """The records a sink wrote to ``path`` so far (none before the first)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


@contextlib.contextmanager
def serving(path: Path) -> Iterator[LogSink]:
    """A :class:`LogSink` writing to ``path`` on a free loopback port, served by a thread."""
    sink = LogSink(path)
    thread = threading.Thread(target=sink.serve_forever, name="otlp-log-sink", daemon=True)
    thread.start()
    try:
        yield sink
    finally:
        sink.shutdown()
        sink.server_close()
        thread.join()
