"""Where the built stack's programs are: ``.stack/bin/`` of the checkout, or ``$STACK_BIN``."""

from __future__ import annotations

import os
from pathlib import Path

STACK_BIN_VARIABLE = "STACK_BIN"
CHECKOUT = Path(__file__).resolve().parents[2]


class NotBuilt(Exception):
    """A stack program is missing: ``bash scripts/build-stack.sh`` builds it."""


def bin_dir() -> Path:
    return Path(os.environ.get(STACK_BIN_VARIABLE) or CHECKOUT / ".stack" / "bin")


def binary(name: str) -> Path:
    """The path of the built program ``name`` (otelcol, jaeger, prometheus, promtool, alertmanager, amtool)."""
    path = bin_dir() / name
    if not os.access(path, os.X_OK):
        raise NotBuilt(f"{path} is not built: run `bash scripts/build-stack.sh` (Go 1.26 or newer)")
    return path
