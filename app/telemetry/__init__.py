"""OpenTelemetry for the gateway, one module per job:

* :mod:`.sdk`: :class:`Telemetry`, the tracer, meter and logger providers of one app and their
  exporters (OTLP, Prometheus);
* :mod:`.otlp`: the OTLP settings read from the ``OTEL_*`` environment;
* :mod:`.instruments`: every instrument, with the metric names and attribute keys;
* :mod:`.observer`: the call observer that records the provider metrics;
* :mod:`.server_spans`: the ``SERVER`` span of each HTTP request.
"""

from .instruments import STATE_BACKEND_UP
from .observer import MAX_MODEL_LABELS, OTHER_MODEL
from .sdk import SERVICE_NAME_DEFAULT, Telemetry
from .server_spans import ServerSpans

__all__ = ["MAX_MODEL_LABELS", "OTHER_MODEL", "SERVICE_NAME_DEFAULT", "STATE_BACKEND_UP", "ServerSpans", "Telemetry"]
