"""A webhook sink for Alertmanager: logs every notification and keeps them for ``GET /notifications``.

Standard library only, so it runs in a bare ``python`` container (compose.yaml's ``webhook-sink``)
and in the stack tests, which start it in a thread as the receiver of a real Alertmanager.
``POST /<receiver>`` takes Alertmanager's webhook JSON; ``GET /notifications`` lists what arrived
as ``[{"path": "/critical", "payload": {...}}, ...]``; ``GET /healthz`` answers ``ok``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class WebhookSink(ThreadingHTTPServer):
    """An HTTP server that records the notifications posted to it."""

    daemon_threads = True

    def __init__(self, host: str, port: int, echo: bool = True) -> None:
        super().__init__((host, port), _Handler)
        self.echo = echo
        self.lock = threading.Lock()
        self.notifications: list[dict[str, Any]] = []

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def record(self, path: str, payload: dict[str, Any]) -> None:
        with self.lock:
            self.notifications.append({"path": path, "payload": payload})
        if self.echo:
            for alert in payload.get("alerts", []):
                labels = ",".join(f"{k}={v}" for k, v in sorted(alert.get("labels", {}).items()))
                print(f"{path} {alert.get('status')} {labels}", flush=True)

    def received(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.notifications)


class _Handler(BaseHTTPRequestHandler):
    server: WebhookSink

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        try:
            payload = json.loads(self.rfile.read(length))
        except ValueError:
            self._answer(400, b"not JSON\n", "text/plain")
            return
        self.server.record(self.path, payload)
        self._answer(200, b"ok\n", "text/plain")

    def do_GET(self) -> None:
        if self.path == "/healthz":
            self._answer(200, b"ok\n", "text/plain")
        elif self.path == "/notifications":
            self._answer(200, json.dumps(self.server.received()).encode(), "application/json")
        else:
            self._answer(404, b"not found\n", "text/plain")

    def _answer(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: each notification is printed once by :meth:`WebhookSink.record`."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9095)
    args = parser.parse_args(argv)
    sink = WebhookSink(args.host, args.port)
    print(f"webhook sink listening on {sink.url}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        sink.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
