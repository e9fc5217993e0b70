"""The OpenTelemetry SDK of one app: its tracer, meter and logger providers and their exporters.

Each :class:`Telemetry` owns its providers (tests build several apps per process); the first
enabled one also becomes the global pair, for third-party instrumentation.

* Log records (:mod:`app.logs.otlp`) come from a root-logger handler that the app attaches while
  it runs (:meth:`Telemetry.attach_log_handler`); their secrets are masked before export.
* HTTP client spans come from ``opentelemetry-instrumentation-httpx``, given a no-op meter provider
  so that it does not record ``http.client.*`` metrics.
* ``gateway_state_backend_up`` reads the shared state's health at each collection
  (:meth:`Telemetry.observe_state_backend`); until the app sets the reader it has no series.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final

from litestar.middleware import DefineMiddleware
from opentelemetry import metrics, trace
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.instrumentation.httpx import HTTPX2ClientInstrumentor
from opentelemetry.metrics import CallbackOptions, NoOpMeterProvider, Observation
from opentelemetry.metrics._internal import _ProxyMeterProvider
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader
from opentelemetry.sdk.resources import (
    SERVICE_INSTANCE_ID,
    SERVICE_NAME,
    SERVICE_VERSION,
    OTELResourceDetector,
    Resource,
)
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.semconv._incubating.attributes.deployment_attributes import DEPLOYMENT_ENVIRONMENT_NAME
from prometheus_client import CollectorRegistry, generate_latest

from .. import __version__
from ..config import Settings
from ..logging_setup import secret_values
from ..logs.otlp import MaskSecrets, log_handler
from ..masking import SecretMask
from ..resilience.bulkhead import Bulkhead
from ..resilience.shared_state import StateHealth
from .instruments import BACKEND, OPERATION, PERIOD, PROVIDER, Instruments
from .observer import TelemetryObserver
from .otlp import otlp_log_exporter, otlp_metric_reader, otlp_span_exporter
from .server_spans import ServerSpans
from .spend import SpendTotals

SERVICE_NAME_DEFAULT: Final = "ai-gateway"
SCOPE: Final = "app.providers"
SERVER_SCOPE: Final = "app.server"


class Telemetry:
    """The gateway's tracer and meter providers, their exporters, and the call observer.

    ``span_exporter`` is fed synchronously (tests, debugging); ``metric_readers`` are added to the
    meter provider as they are. ``OTEL_SDK_DISABLED=true`` leaves both providers no-op: nothing
    is recorded or exported and ``/metrics`` is off.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        span_exporter: SpanExporter | None = None,
        metric_readers: Sequence[MetricReader] = (),
    ) -> None:
        self.settings = settings
        self.enabled = os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() != "true"
        self.resource = build_resource(settings)
        readers = list(metric_readers)
        self._registry: CollectorRegistry | None = None
        if self.enabled:
            otlp_metrics = otlp_metric_reader(settings)
            if otlp_metrics is not None:
                readers.append(otlp_metrics)
            if settings.enable_metrics:
                readers.append(self._prometheus_reader())
        self.meter_provider = MeterProvider(metric_readers=readers, resource=self.resource, shutdown_on_exit=False)
        # The SDK's own metrics (queues, drops, exports; OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED) go here too.
        own = self.meter_provider
        self.tracer_provider = TracerProvider(resource=self.resource, shutdown_on_exit=False, meter_provider=own)
        if self.enabled:
            if span_exporter is not None:
                self.tracer_provider.add_span_processor(SimpleSpanProcessor(span_exporter, meter_provider=own))
            otlp_spans = otlp_span_exporter(own)
            if otlp_spans is not None:
                self.tracer_provider.add_span_processor(BatchSpanProcessor(otlp_spans, meter_provider=own))
        self.logger_provider: LoggerProvider | None = None
        """Set when log records are exported (OTLP); :meth:`attach_log_handler` feeds it."""
        otlp_logs = otlp_log_exporter(own) if self.enabled else None
        if otlp_logs is not None:
            self.logger_provider = LoggerProvider(resource=self.resource, shutdown_on_exit=False, meter_provider=own)
            self.logger_provider.add_log_record_processor(MaskSecrets(secret_values(settings)))
            self.logger_provider.add_log_record_processor(BatchLogRecordProcessor(otlp_logs, meter_provider=own))
        self._log_handler: logging.Handler | None = None
        self.tracer = self.tracer_provider.get_tracer(SCOPE, __version__)
        self._state_health: Callable[[], StateHealth] | None = None
        self._bulkheads: Iterable[Bulkhead] = ()
        self._spend: Callable[[], Mapping[tuple[str, str], float]] | None = None
        spend = SpendTotals()
        self.instruments = Instruments(self.meter_provider.get_meter(SCOPE, __version__), self._observe_state,
                                       self._observe_active, self._observe_limits, spend.observe_cost,
                                       spend.observe_usage, self._observe_spend)
        self.observer = TelemetryObserver(self.instruments, settings.openai_model, spend)
        self._shutdown = False
        if self.enabled:
            _adopt_as_global(self.tracer_provider, self.meter_provider)

    def observe_state_backend(self, health: Callable[[], StateHealth]) -> None:
        """Export ``gateway_state_backend_up`` from ``health()``, read at each collection."""
        self._state_health = health

    def observe_bulkheads(self, bulkheads: Iterable[Bulkhead]) -> None:
        """Export ``provider_client_active_requests`` and ``provider_client_concurrency_limit``
        from these bulkheads, read at each collection."""
        self._bulkheads = bulkheads

    def observe_spend(self, spend: Callable[[], Mapping[tuple[str, str], float]]) -> None:
        """Export ``provider_spend_usd`` from ``spend()`` (USD per provider and period), read at each
        collection."""
        self._spend = spend

    def record_loop_lag(self, seconds: float) -> None:
        self.instruments.event_loop_lag.record(seconds)

    def _observe_active(self, _: CallbackOptions) -> Iterable[Observation]:
        return [Observation(count, {PROVIDER: b.provider, OPERATION: operation})
                for b in self._bulkheads for operation, count in b.by_operation.items()]

    def _observe_limits(self, _: CallbackOptions) -> Iterable[Observation]:
        return [Observation(b.limit, {PROVIDER: b.provider}) for b in self._bulkheads]

    def _observe_spend(self, _: CallbackOptions) -> Iterable[Observation]:
        if self._spend is None:
            return []
        return [Observation(usd, {PROVIDER: provider, PERIOD: period})
                for (provider, period), usd in self._spend().items()]

    def _observe_state(self, _: CallbackOptions) -> Iterable[Observation]:
        if self._state_health is None:
            return []
        health = self._state_health()
        return [Observation(1 if health.status == "up" else 0, {BACKEND: health.backend})]

    def _prometheus_reader(self) -> MetricReader:
        self._registry = CollectorRegistry(auto_describe=False)
        # Scope labels would add three constant labels to every series; target_info keeps the resource.
        return PrometheusMetricReader(scope_info_enabled=False, registry=self._registry)

    @property
    def metrics_enabled(self) -> bool:
        """Whether ``/metrics`` has anything to serve (``ENABLE_METRICS`` and the SDK enabled)."""
        return self._registry is not None

    def metrics_text(self) -> bytes:
        """The Prometheus text exposition (format 0.0.4) of every metric of this app."""
        if self._registry is None:
            raise RuntimeError("metrics are disabled (ENABLE_METRICS=false or OTEL_SDK_DISABLED=true)")
        return generate_latest(self._registry)

    def instrument_http_client(self, client: Any) -> None:
        """HTTP client spans (and ``traceparent`` upstream) on this app's providers, without the
        instrumentation's ``http.client.*`` metrics.

        Replaces an instrumentation already attached to ``client``; with the SDK disabled the
        client is left bare, which is the cheapest.
        """
        if getattr(client, "_is_instrumented_by_opentelemetry", False):
            HTTPX2ClientInstrumentor.uninstrument_client(client)
        if self.enabled:
            HTTPX2ClientInstrumentor.instrument_client(
                client, tracer_provider=self.tracer_provider, meter_provider=NoOpMeterProvider())

    def server_middleware(self) -> list[DefineMiddleware]:
        """The app middleware that makes server spans (:class:`ServerSpans`; none when disabled)."""
        if not self.enabled:
            return []
        return [DefineMiddleware(ServerSpans, tracer=self.tracer_provider.get_tracer(SERVER_SCOPE, __version__),
                                 mask=SecretMask(secret_values(self.settings)).text)]

    def attach_log_handler(self) -> None:
        """Export log records from now until :meth:`shutdown` (nothing to do without OTLP logs)."""
        if self.logger_provider is not None and self._log_handler is None:
            self._log_handler = log_handler(self.logger_provider)
            logging.getLogger().addHandler(self._log_handler)

    def shutdown(self) -> None:
        """Flush and shut down every provider; later calls do nothing."""
        if self._shutdown:
            return
        self._shutdown = True
        if self._log_handler is not None:
            logging.getLogger().removeHandler(self._log_handler)
        if self.logger_provider is not None:
            self.logger_provider.shutdown()
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


def build_resource(settings: Settings) -> Resource:
    """Our defaults, overridden by ``OTEL_SERVICE_NAME`` and ``OTEL_RESOURCE_ATTRIBUTES``."""
    attributes: dict[str, Any] = {
        SERVICE_NAME: SERVICE_NAME_DEFAULT,
        SERVICE_VERSION: __version__,
        DEPLOYMENT_ENVIRONMENT_NAME: settings.environment,
        SERVICE_INSTANCE_ID: str(uuid.uuid4()),
    }
    attributes.update(OTELResourceDetector().detect().attributes)
    return Resource.create(attributes)


_globals_lock = threading.Lock()


def _adopt_as_global(tracer_provider: TracerProvider, meter_provider: MeterProvider) -> None:
    """Make these the global providers unless some are set already (the API warns on a second set)."""
    with _globals_lock:
        if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
            trace.set_tracer_provider(tracer_provider)
        if isinstance(metrics.get_meter_provider(), _ProxyMeterProvider):
            metrics.set_meter_provider(meter_provider)
