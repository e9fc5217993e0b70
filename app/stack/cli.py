"""``python -m app stack up --gateway URL [--json]``: the whole stack without a container engine."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import threading
from pathlib import Path

from .binaries import NotBuilt
from .processes import Options, StackError, running


def up(args: argparse.Namespace) -> int:
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    workdir = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="ai-gateway-stack-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        with running(args.gateway, workdir, Options(logs_url=args.logs)) as stack:
            if args.json:
                print(json.dumps(stack.endpoints.as_dict()), flush=True)
            else:
                urls = "  ".join(f"{name}: {url}" for name, url in stack.endpoints.as_dict().items())
                logs = f"  logs: {stack.logs}" if stack.logs else ""
                print(f"stack ready ({workdir}): {urls}{logs}", flush=True)
            stop.wait()
    except NotBuilt as error:
        print(f"stack up: {error}", file=sys.stderr)
        return 2
    except StackError as error:
        print(f"stack up: {error}", file=sys.stderr)
        return 1
    return 0


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    stack = commands.add_parser("stack", help="run the built Collector, Jaeger, Prometheus 3 and Alertmanager")
    verbs = stack.add_subparsers(dest="verb", required=True, metavar="{up}")
    start = verbs.add_parser("up", help="start them on free loopback ports; stop them on SIGTERM")
    start.add_argument("--gateway", required=True, help="the gateway's base URL, which Prometheus scrapes")
    start.add_argument("--json", action="store_true", help="print the endpoints as one JSON object")
    start.add_argument("--dir", help="where configs, data and logs go (default: a new temporary directory)")
    start.add_argument("--logs", default="", help="an OTLP/HTTP logs receiver for the Collector (Loki's /otlp; "
                       "default: the records as JSON lines in DIR/logs.jsonl)")
    start.set_defaults(run=up)
