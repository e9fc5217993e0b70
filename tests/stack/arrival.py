"""promtool's recorded incidents (``alerts/tests/*.yml``) as their series arrive by each metric path.

The files hold series as Prometheus 3 stores them when it scrapes ``/metrics``: ``job`` the scrape
job, ``instance`` the scrape address, ``le`` as the gateway writes it (``"5.0"``). Received over OTLP
through the Collector, the same series carry ``job`` = ``service.name``, ``instance`` =
``service.instance.id`` and ``le`` as Prometheus's OTLP translation spells a bound (Go's shortest
form: ``"5"``). The rules select none of the three, so both spellings must give the same alerts.
"""

from __future__ import annotations

import re

PATHS = ("scrape", "otlp")
"""How the gateway's metrics reach Prometheus: scraped from ``/metrics``, or over OTLP through the
Collector."""
SERVICE_NAME = "ai-gateway"
_SCRAPE_ADDRESS = re.compile(r"gateway-([a-z]):8000")
_INTEGER_BOUND = re.compile(r'le="(\d+)\.0"')


def arriving(text: str, path: str) -> str:
    """A promtool test file's text with its series (and expected labels) as ``path`` delivers them."""
    if path == "scrape":
        return text
    assert path == "otlp", path
    text = text.replace('job="gateway"', f'job="{SERVICE_NAME}"')
    text = _SCRAPE_ADDRESS.sub(lambda m: f"5b0e6c1a-4f3d-4e2b-9a7c-00000000000{m.group(1)}", text)
    return _INTEGER_BOUND.sub(r'le="\1"', text)
