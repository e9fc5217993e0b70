"""``python -m app dashboards render [--check]``: writes ``dashboards/overview.json`` and
``dashboards/provider.json`` from :mod:`app.dashboards.build`; ``--check`` writes nothing and exits
1 with a diff when the committed files differ.

A command of its own rather than a part of ``rules render``: the rule files are also rendered as
short-window variants for tests, the dashboards never are, and each check names the one command
that fixes its drift.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from grafana_foundation_sdk.cog.encoder import JSONEncoder

from ..config import AlertSettings, ConfigError, load_settings
from ..monitoring.render import write_or_check
from ..monitoring.rules import DEFAULT_RUNBOOK_BASE_URL
from .alerting import facts
from .build import overview, provider

OVERVIEW, PROVIDER = Path("overview.json"), Path("provider.json")


def render(settings: AlertSettings, runbook_base_url: str = DEFAULT_RUNBOOK_BASE_URL) -> dict[Path, str]:
    """The dashboards' JSON by path relative to the output directory."""
    f = facts(settings, runbook_base_url)
    return {path: json.dumps(model, cls=JSONEncoder, indent=2, ensure_ascii=False) + "\n"
            for path, model in ((OVERVIEW, overview(f)), (PROVIDER, provider(f)))}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m app dashboards", description="Grafana dashboards")
    commands = parser.add_subparsers(dest="command", required=True)
    r = commands.add_parser("render", help="write (or --check) the dashboards built from rules.py")
    r.add_argument("--check", action="store_true", help="write nothing; exit 1 with a diff if the files differ")
    r.add_argument("--out", type=Path, default=Path("dashboards"), help="output directory (default: ./dashboards)")
    r.add_argument("--from-env", action="store_true", help="thresholds from the ALERT_* environment, not the defaults")
    r.add_argument("--runbook-base-url", default=DEFAULT_RUNBOOK_BASE_URL,
                   help="prefix of the runbook links (default: repository-relative)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``dashboards render [--check] [--out DIR] [--from-env] [--runbook-base-url URL]``."""
    args = _parser().parse_args(argv)
    try:
        settings = load_settings().alerts if args.from_env else AlertSettings()
    except ConfigError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    return write_or_check(render(settings, args.runbook_base_url), args.out, args.check,
                          "the dashboards differ from app/dashboards: run `python -m app dashboards render`")
