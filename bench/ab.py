"""A/B of gateway variants: CPU time per request at 32 concurrent ``/v1/translate`` calls.

Each variant is ``NAME=DIR[:KEY=VALUE,...]``: the gateway of the checkout in ``DIR`` (a
directory holding ``app/``, e.g. a ``git worktree`` of another commit, or a patched copy) in the
production profile of ``bench/overhead.py``, with extra environment variables; ``NAME=bare`` is
the bare proxy. All variants run at once against one simulator and are loaded in turn, the order
reversing every round, so that the machine's load drifts over all of them alike. CPU time per
request, read from ``/proc``, is the figure to compare: on a shared machine it moves far less than
requests per second. Examples::

    python bench/ab.py now=. sampled=.:OTEL_TRACES_SAMPLER=traceidratio,OTEL_TRACES_SAMPLER_ARG=0.1
    git worktree add /tmp/before HEAD~1 && python bench/ab.py before=/tmp/before after=. bare=bare
    python bench/ab.py --stack quiet=. exported=.:OTEL_EXPORTER_OTLP_ENDPOINT={otlp_http}

``--stack`` also runs the built stack (``python -m app stack up``'s programs, its Prometheus not
scraping), and ``{otlp_http}`` / ``{otlp_grpc}`` in a variant's values name its Collector. Where a
variant sets ``OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED=true``, the spans its SDK exported, failed
to export and dropped are printed too (from its ``/metrics``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

import aiohttp
import httpx
import uvloop
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from app.stack.processes import Options, free_port, running
from bench.overhead import gateway_env, load
from bench.servers import ROOT, Server, started, wait_ready


def variant(spec: str) -> tuple[str, str, dict[str, str]]:
    """``NAME=DIR[:KEY=VALUE,...]`` as (name, directory, environment)."""
    name, sep, rest = spec.partition("=")
    if not sep or not name or not rest:
        raise argparse.ArgumentTypeError(f"expected NAME=DIR[:KEY=VALUE,...], got {spec!r}")
    directory, _, assignments = rest.partition(":")
    env = dict(pair.split("=", 1) for pair in assignments.split(",") if pair)
    if directory != "bare" and not (Path(directory) / "app").is_dir():
        raise argparse.ArgumentTypeError(f"{directory!r} holds no app/ package")
    return name, directory, env


async def compare(servers: Sequence[Server], seconds: float, rounds: int, concurrency: int) -> dict[str, list[float]]:
    errors: list[str] = []
    cpu: dict[str, list[float]] = {}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        await wait_ready(session, servers)
        targets = [s for s in servers if not s.direct]
        for target in targets:  # warm up pools and caches
            await load(session, target, servers, 2.0, concurrency, errors)
        for round_ in range(rounds):
            for target in targets if round_ % 2 == 0 else targets[::-1]:
                run = await load(session, target, servers, seconds, concurrency, errors)
                cpu.setdefault(target.name, []).append(run.cpu_ms_per_request[target.name])
    if errors:
        raise RuntimeError("requests failed, the numbers are meaningless:\n" + "\n".join(errors))
    return cpu


def span_counts(server: Server) -> str:
    """What the SDK of a gateway did with its spans, from its ``/metrics`` (empty without its own metrics)."""
    response = httpx.get(server.url + "/metrics", timeout=10)
    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(response.text if response.status_code == 200 else ""):
        for sample in family.samples:
            if sample.name == "otel_sdk_exporter_span_exported_total":
                key = f"export {sample.labels.get('error_type') or 'ok'}"
            elif sample.name == "otel_sdk_processor_span_processed_total" and "error_type" in sample.labels:
                key = f"dropped {sample.labels['error_type']}"
            else:
                continue
            counts[key] = counts.get(key, 0.0) + sample.value
    return ", ".join(f"{key} {value:,.0f}" for key, value in sorted(counts.items()))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("variants", nargs="+", type=variant, metavar="NAME=DIR[:KEY=VALUE,...]")
    parser.add_argument("--seconds", type=float, default=4.0, help="length of one load run")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--stack", action="store_true", help="also run the built stack; {otlp_http} and "
                        "{otlp_grpc} in variants' values are its Collector's OTLP endpoints")
    args = parser.parse_args(argv)
    python = sys.executable
    port = free_port()
    simulator = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="bench-ab-") as tmp, ExitStack() as stack:
        logs = Path(tmp)
        endpoints: dict[str, str] = {}
        if args.stack:
            (logs / "stack").mkdir()
            running_stack = running("http://127.0.0.1:9", logs / "stack", Options(scrape_gateway=False))
            endpoints = stack.enter_context(running_stack).endpoints.as_dict()
        servers = [stack.enter_context(started("simulator", [python, "-m", "app", "simulate", "--port", str(port)],
                                               port, "/", logs, direct=True))]
        for name, directory, env in args.variants:
            port = free_port()
            if directory == "bare":
                argv_ = [python, str(ROOT / "bench" / "bare_proxy.py"), "--port", str(port), "--upstream", simulator]
                servers.append(stack.enter_context(started(name, argv_, port, "/health", logs)))
            else:
                argv_ = [python, "-m", "app", "serve", "--port", str(port)]
                variables = {key: value.format_map(endpoints) for key, value in env.items()}
                servers.append(stack.enter_context(started(
                    name, argv_, port, "/health/live", logs, {**gateway_env(simulator, True), **variables},
                    cwd=Path(directory))))
        cpu = uvloop.run(compare(servers, args.seconds, args.rounds, args.concurrency))
        spans = {s.name: span_counts(s) for s in servers if s.ready_path == "/health/live"}
    width = max(len(name) for name in cpu)
    print(f"CPU ms per request, {args.rounds} rounds of {args.seconds:g} s at {args.concurrency} concurrent")
    for name, values in cpu.items():
        print(f"  {name:<{width}}  median {statistics.median(values):.3f}   "
              + " ".join(f"{v:.3f}" for v in sorted(values)))
    for name, counts in spans.items():
        if counts:
            print(f"  {name:<{width}}  spans: {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
