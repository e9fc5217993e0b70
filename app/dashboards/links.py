"""Links out of a panel: the runbooks of the alerts it shows, and its calls' traces and logs.

Traces and logs open in Grafana's Explore on the provisioned Jaeger (uid ``jaeger``) and Loki
(uid ``loki``) datasources; latency panels also ask Prometheus for exemplars, which the
Prometheus datasource links to Jaeger by their ``trace_id``.
"""

from __future__ import annotations

import json
from urllib.parse import quote

from grafana_foundation_sdk.builders.dashboard import DashboardLink
from grafana_foundation_sdk.models.dashboard import DashboardLinkType

from ..telemetry import SERVICE_NAME_DEFAULT

JAEGER_UID = "jaeger"
LOKI_UID = "loki"
_PROVIDER = "${__field.labels.provider}"
_OPERATION = "${__field.labels.operation}"


def runbook(alert: str, url: str) -> DashboardLink:
    return DashboardLink(f"Runbook: {alert}").type(DashboardLinkType.LINK).url(url).target_blank(True)


def _explore(datasource: str, query: dict[str, str]) -> str:
    """An Explore URL over the panel's time range (the ``panes`` form of Grafana 10 and later)."""
    pane = {"datasource": datasource, "queries": [{"refId": "A", **query}],
            "range": {"from": "${__from}", "to": "${__to}"}}
    return "/explore?schemaVersion=1&panes=" + quote(json.dumps({"a": pane}, separators=(",", ":")), safe="${}_.")


def traces() -> DashboardLink:
    """The series' calls in Jaeger: CLIENT spans carry ``provider`` and ``operation``."""
    query = {"queryType": "search", "service": SERVICE_NAME_DEFAULT,
             "tags": f'provider="{_PROVIDER}" operation="{_OPERATION}"'}
    return DashboardLink(f"Traces of {_PROVIDER} {_OPERATION}").type(DashboardLinkType.LINK).url(
        _explore(JAEGER_UID, query))


def logs() -> DashboardLink:
    """The series' log events in Loki: OTLP log records keep ``provider`` and ``operation``."""
    expr = f'{{service_name="{SERVICE_NAME_DEFAULT}"}} | provider="{_PROVIDER}" | operation="{_OPERATION}"'
    return DashboardLink(f"Logs of {_PROVIDER} {_OPERATION}").type(DashboardLinkType.LINK).url(
        _explore(LOKI_UID, {"expr": expr, "queryType": "range"}))
