"""Grafana dashboards built with Grafana's own SDK (``grafana-foundation-sdk``, Grafana 11.6 build)
from the one rules source, :mod:`app.monitoring.rules`; ``python -m app dashboards render``
writes them to ``dashboards/*.json``."""
