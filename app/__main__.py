"""CLI: ``python -m app serve | simulate | rules ... | dashboards ...``."""

from __future__ import annotations

import argparse
import gc
import logging
import os
import signal
import sys
from types import FrameType
from typing import Any

from .config import ConfigError, load_settings

log = logging.getLogger("app")
GC_YOUNG_THRESHOLD = 20_000
"""Allocations (net of frees) between young-generation collections; Python's default is 700."""


BACKLOG = 4096
"""Connections the kernel queues before they are accepted (uvicorn's default is 2,048): a burst of
thousands of callers at once, each holding a slow call, must not be dropped at the door."""


BASE_URL_VARIABLE = "_GATEWAY_SERVE_BASE_URL"
"""Where ``serve`` tells its worker processes their own address (for the mounted simulator)."""


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    try:
        settings = load_settings()
    except ConfigError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    if args.workers < 1:
        print("--workers: expected an integer >= 1", file=sys.stderr)
        return 2
    if args.workers > 1 and not settings.state_redis_url:
        print(f"--workers {args.workers} needs STATE_REDIS_URL: without a shared store each process would "
              "have its own rate limits (together admitting N times P_RATE_LIMIT), its own circuit breakers and "
              "its own in-app view of metrics and alerts. Set STATE_REDIS_URL to a Redis, or run one worker.",
              file=sys.stderr)
        return 2
    local = "127.0.0.1" if args.host in ("0.0.0.0", "::", "") else args.host
    base = f"http://{local}:{args.port}"
    os.environ[BASE_URL_VARIABLE] = base
    for name, svc in settings.with_simulator(f"{base}/_sim").services.items():
        log.info("provider %s: %s (%s)", name, svc.mode, svc.base_url or "embedded")
    log.info("health: %s/health/  metrics: %s/metrics  API docs: %s/schema  status: %s/status%s",
             base, base, base, base, f"  ({args.workers} worker processes, one fleet)" if args.workers > 1 else "")
    # uvicorn shuts down gracefully on SIGTERM, then raises the signal again: end with 0 instead.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    from .api.shutdown_grace import GraceWebSockets

    options = {"host": args.host, "port": args.port, "log_level": settings.log_level, "access_log": False,
               "log_config": None, "loop": "uvloop", "http": "httptools",
               "timeout_graceful_shutdown": int(settings.shutdown_grace), "backlog": BACKLOG,
               # Live audio does not compress; per-message deflate would cost CPU and latency per message.
               "ws_per_message_deflate": False, "ws": GraceWebSockets}
    if args.workers > 1:  # processes started by uvicorn's supervisor, each building its app
        uvicorn.run("app.__main__:worker_app", factory=True, workers=args.workers, **options)
    else:
        uvicorn.run(worker_app(), **options)
    return 0


def worker_app() -> Any:
    """The app of one serving process, from the environment (``serve`` set its address there)."""
    from .main import create_app

    settings = load_settings()
    base = os.environ.get(BASE_URL_VARIABLE)
    if base:
        settings = settings.with_simulator(f"{base}/_sim")
    app = create_app(settings)
    _settle_garbage_collector()
    return app


def _settle_garbage_collector() -> None:
    """Move everything built at start-up (modules, the app, its routes: about 170,000 objects)
    out of the collector's view and collect young objects less often.

    With Python's defaults, every hit the rate limiter keeps for its window is a new long-lived
    object, and their growth keeps triggering full collections, which rescan the start-up objects
    too and stall every request in flight while they run. With these settings, full collections
    stop under sustained load and young ones are rarer and short (figures in bench/README.md,
    "What changed since the first measurement").
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


def _exit_cleanly(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def _simulate(args: argparse.Namespace) -> int:
    import uvicorn

    from .simulator import create_simulator_app

    log.info("simulator on http://%s:%d/_sim (faults: PUT /_sim/faults)", args.host, args.port)
    uvicorn.run(create_simulator_app(), host=args.host, port=args.port, log_level="warning", log_config=None,
                loop="uvloop", http="httptools", backlog=BACKLOG)
    return 0


def _rules(args: argparse.Namespace) -> int:
    from .monitoring.render import main as render_main

    return render_main(args.rest)


def _dashboards(args: argparse.Namespace) -> int:
    from .dashboards.render import main as render_main

    return render_main(args.rest)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app", description="AI provider gateway")
    commands = parser.add_subparsers(dest="command", required=True, metavar="{serve,simulate,rules,dashboards,stack}")
    serve = commands.add_parser("serve", help="run the gateway (simulated providers when no API key is set)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1,
                       help="processes serving the port (more than 1 needs STATE_REDIS_URL: one fleet)")
    serve.set_defaults(run=_serve)
    simulate = commands.add_parser("simulate", help="run the provider simulator alone")
    simulate.add_argument("--host", default="127.0.0.1")
    simulate.add_argument("--port", type=int, default=8100)
    simulate.set_defaults(run=_simulate)
    rules = commands.add_parser("rules", help="render or check the Prometheus and Grafana rule files",
                                add_help=False)
    rules.add_argument("rest", nargs=argparse.REMAINDER)
    rules.set_defaults(run=_rules)
    dashboards = commands.add_parser("dashboards", help="render or check the Grafana dashboards", add_help=False)
    dashboards.add_argument("rest", nargs=argparse.REMAINDER)
    dashboards.set_defaults(run=_dashboards)
    from .stack.cli import add_parser as add_stack_parser

    add_stack_parser(commands)
    args = parser.parse_args(argv)
    from .config import get_settings
    from .logging_setup import setup_logging

    try:
        setup_logging(get_settings())
    except ConfigError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    result: int = args.run(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
