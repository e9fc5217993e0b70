"""OpenTelemetry for the gateway: providers, exporters, instruments and the call observer.

Each :class:`Telemetry` owns its TracerProvider and MeterProvider (tests build several apps per
process); the first enabled one also becomes the global pair, for third-party instrumentation.

Choices, each documented here once:

* OTLP protocol: ``http/protobuf`` unless ``OTEL_EXPORTER_OTLP_[TRACES_|METRICS_]PROTOCOL`` says
  ``grpc``. That is the specification's default (the Python SDK's own auto-configuration still
  defaults to gRPC); the collector listens for it on 4318.
* OTLP is used for a signal when an endpoint is set (``OTEL_EXPORTER_OTLP_ENDPOINT`` or the
  per-signal variable) and ``OTEL_TRACES_EXPORTER`` / ``OTEL_METRICS_EXPORTER`` /
  ``OTEL_LOGS_EXPORTER``, when set, name ``otlp``. The exporters read the remaining
  ``OTEL_EXPORTER_OTLP_*`` variables themselves.
* Log records (:mod:`app.logs.otlp`) come from a root-logger handler that the app attaches while
  it runs (:meth:`Telemetry.attach_log_handler`); their secrets are masked before export.
* ``error_type`` is recorded on failed calls only. The Prometheus exporter fills a missing label
  with ``""``, so success series read ``error_type=""``, which PromQL treats as absent.
* Active health checks go to ``provider.health_check.duration``, never to the request metrics.
* Per (provider, operation), the first sighting publishes ``provider_circuit_state`` 0 and the
  opened and rejection counters at 0, so that ``increase()`` sees their first real increment.
* ``gen_ai.request.model`` is bounded: the configured chat model plus at most
  :data:`MAX_MODEL_LABELS` other values; later ones are recorded as :data:`OTHER_MODEL`.
* Server spans come from :class:`ServerSpans`, not Litestar's ``OpenTelemetryPlugin`` (which wraps
  ``opentelemetry-instrumentation-asgi``): the same span, named by the route template rather than
  the raw path, for 0.08–0.10 ms less CPU per request, and without the ``http.server.*`` metrics,
  which nothing reads (the provider metrics are the contract). HTTP client spans stay with ``opentelemetry-instrumentation-httpx``, given a
  no-op meter provider so that it does not record ``http.client.*`` metrics either.
* Histogram bounds are floats, so Prometheus reads ``le="5.0"`` and ``le="10.0"`` (the spelling
  Prometheus 3 normalises every ``le`` to).
* ``gateway_state_backend_up`` is an observable gauge: each collection (a scrape, an OTLP export)
  reads the shared state's health at that moment (:meth:`Telemetry.observe_state_backend`), so it
  needs no listener and is never stale; until the app sets the reader it has no series.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Final

from litestar.enums import ScopeType
from litestar.middleware import DefineMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from opentelemetry import context, metrics, propagate, trace
from opentelemetry.instrumentation.httpx import HTTPX2ClientInstrumentor
from opentelemetry.metrics import CallbackOptions, Meter, NoOpMeterProvider, Observation
from opentelemetry.metrics._internal import _ProxyMeterProvider
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import (
    SERVICE_INSTANCE_ID,
    SERVICE_NAME,
    SERVICE_VERSION,
    OTELResourceDetector,
    Resource,
)
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai
from opentelemetry.semconv._incubating.attributes.deployment_attributes import DEPLOYMENT_ENVIRONMENT_NAME
from opentelemetry.semconv._incubating.metrics import gen_ai_metrics
from opentelemetry.semconv.attributes.client_attributes import CLIENT_ADDRESS
from opentelemetry.semconv.attributes.error_attributes import ERROR_TYPE
from opentelemetry.semconv.attributes.http_attributes import (
    HTTP_REQUEST_METHOD,
    HTTP_REQUEST_METHOD_ORIGINAL,
    HTTP_RESPONSE_STATUS_CODE,
    HTTP_ROUTE,
    HttpRequestMethodValues,
)
from opentelemetry.semconv.attributes.network_attributes import NETWORK_PROTOCOL_VERSION
from opentelemetry.semconv.attributes.url_attributes import URL_PATH, URL_SCHEME
from opentelemetry.trace import SpanKind, Status, StatusCode
from prometheus_client import CollectorRegistry, generate_latest

from . import __version__
from .calls import ErrorType
from .config import ConfigError, Settings
from .logging_setup import secret_values
from .logs.otlp import MaskSecrets, log_handler
from .resilience.breaker import STATE_VALUES
from .resilience.bulkhead import Bulkhead
from .resilience.shared_state import StateHealth

if TYPE_CHECKING:
    from .calls import CallEvent, CallSpec

SERVICE_NAME_DEFAULT: Final = "ai-gateway"
SCOPE: Final = "app.providers"
SERVER_SCOPE: Final = "app.server"

LATENCY_BUCKETS: Final[tuple[float, ...]] = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 7.5, 10.0, 15.0, 30.0, 60.0,
)
"""Seconds; shared with the in-app recorder so that both compute the same quantiles."""
LOOP_LAG_BUCKETS: Final[tuple[float, ...]] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)
"""Seconds of event-loop lag; ``ALERT_EVENT_LOOP_LAG_WARNING`` (0.1 s) is a bound, so its alert is exact."""
GEN_AI_DURATION_BUCKETS: Final[tuple[float, ...]] = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
)
"""The GenAI semantic conventions' advice for ``gen_ai.client.operation.duration``."""
GEN_AI_TOKEN_BUCKETS: Final[tuple[float, ...]] = tuple(float(4**n) for n in range(14))
"""The GenAI semantic conventions' advice for ``gen_ai.client.token.usage`` (1, 4, ... 4**13)."""

# Instrument names (Prometheus names after translation in the comments).
REQUEST_DURATION: Final = "provider.client.request.duration"  # provider_client_request_duration_seconds
REJECTIONS: Final = "provider.client.rejections"  # provider_client_rejections_total
CIRCUIT_STATE: Final = "provider.circuit.state"  # provider_circuit_state
CIRCUIT_OPENED: Final = "provider.circuit.opened"  # provider_circuit_opened_total
TIME_TO_FIRST_BYTE: Final = "provider.client.time_to_first_byte"  # provider_client_time_to_first_byte_seconds
AUDIO_DURATION: Final = "provider.client.audio_duration"  # provider_client_audio_duration_seconds_total
CHARACTERS: Final = "provider.client.characters"  # provider_client_characters_total
HEALTH_CHECK_DURATION: Final = "provider.health_check.duration"  # provider_health_check_duration_seconds
STATE_BACKEND_UP: Final = "gateway.state.backend.up"  # gateway_state_backend_up
ACTIVE_REQUESTS: Final = "provider.client.active_requests"  # provider_client_active_requests
CONCURRENCY_LIMIT: Final = "provider.client.concurrency_limit"  # provider_client_concurrency_limit
CALL_WAIT: Final = "gateway.call.wait"  # gateway_call_wait_seconds
EVENT_LOOP_LAG: Final = "gateway.event_loop.lag"  # gateway_event_loop_lag_seconds

# Attribute keys of the provider metrics: plain names, identical in OTLP and in Prometheus.
PROVIDER: Final = "provider"
OPERATION: Final = "operation"
OUTCOME: Final = "outcome"
ERROR_TYPE_LABEL: Final = "error_type"
REASON: Final = "reason"
BACKEND: Final = "backend"
TOKEN_INPUT: Final = "input"
TOKEN_OUTPUT: Final = "output"
REJECTION_REASONS: Final = (ErrorType.CIRCUIT_OPEN, ErrorType.RATE_LIMITED, ErrorType.INVALID_INPUT,
                            ErrorType.OVERLOADED)

UNTRACED_ROUTES: Final = frozenset({"/metrics"})
"""Route templates that get no server span (Prometheus scraping every few seconds is noise)."""
HTTP_METHODS: Final = frozenset(m.value for m in HttpRequestMethodValues if m.value != "_OTHER")

MAX_MODEL_LABELS: Final = 10
OTHER_MODEL: Final = "_other"


Observer = Callable[[CallbackOptions], Iterable[Observation]]


class Instruments:
    """Every instrument of the gateway, created in this one place; the observable gauges read
    their values through ``observe_state`` (the shared state store's health), ``observe_active``
    and ``observe_limits`` (the bulkheads) when they are collected, so they cost nothing per call."""

    def __init__(self, meter: Meter, observe_state: Observer, observe_active: Observer,
                 observe_limits: Observer) -> None:
        self.request_duration = meter.create_histogram(
            REQUEST_DURATION, unit="s", description="Duration of provider call attempts.",
            explicit_bucket_boundaries_advisory=LATENCY_BUCKETS)
        self.rejections = meter.create_counter(
            REJECTIONS, unit="{rejection}", description="Calls refused before reaching the provider.")
        self.circuit_state = meter.create_gauge(
            CIRCUIT_STATE, unit="1", description="Circuit breaker state: 0 closed, 1 half-open, 2 open.")
        self.circuit_opened = meter.create_counter(
            CIRCUIT_OPENED, unit="{transition}", description="Times a circuit breaker opened.")
        self.time_to_first_byte = meter.create_histogram(
            TIME_TO_FIRST_BYTE, unit="s", description="Time to the first byte of streamed answers.",
            explicit_bucket_boundaries_advisory=LATENCY_BUCKETS)
        self.audio_duration = meter.create_counter(
            AUDIO_DURATION, unit="s", description="Seconds of audio sent to or received from providers.")
        self.characters = meter.create_counter(
            CHARACTERS, unit="{character}", description="Text characters sent to providers.")
        self.health_check_duration = meter.create_histogram(
            HEALTH_CHECK_DURATION, unit="s", description="Duration of active health checks.",
            explicit_bucket_boundaries_advisory=LATENCY_BUCKETS)
        self.gen_ai_duration = meter.create_histogram(
            gen_ai_metrics.GEN_AI_CLIENT_OPERATION_DURATION, unit="s", description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=GEN_AI_DURATION_BUCKETS)
        self.gen_ai_tokens = meter.create_histogram(
            gen_ai_metrics.GEN_AI_CLIENT_TOKEN_USAGE, unit="{token}",
            description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=GEN_AI_TOKEN_BUCKETS)
        self.state_backend_up = meter.create_observable_gauge(
            STATE_BACKEND_UP, callbacks=[observe_state], unit="1",
            description="1 while the store of rate limits and breaker state answers, 0 while it is down "
                        "(backend redis or memory; memory is always 1).")
        self.active_requests = meter.create_observable_gauge(
            ACTIVE_REQUESTS, callbacks=[observe_active], unit="{request}",
            description="Provider calls in flight in this process (each holds a bulkhead slot).")
        self.concurrency_limit = meter.create_observable_gauge(
            CONCURRENCY_LIMIT, callbacks=[observe_limits], unit="{request}",
            description="P_MAX_CONCURRENCY: provider calls this process lets be in flight at once.")
        self.call_wait = meter.create_histogram(
            CALL_WAIT, unit="s", description="Time a provider call waited inside the gateway (admission, shared "
                                             "state, a connection) before its request was written.",
            explicit_bucket_boundaries_advisory=LATENCY_BUCKETS)
        self.event_loop_lag = meter.create_histogram(
            EVENT_LOOP_LAG, unit="s", description="How late the event loop ran a timer: the process's saturation.",
            explicit_bucket_boundaries_advisory=LOOP_LAG_BUCKETS)


class _BoundedModels:
    """Model names as metric labels, bounded whatever the callers put in a :class:`CallSpec`."""

    def __init__(self, configured: str) -> None:
        self._allowed = {configured}
        self._lock = threading.Lock()

    def label(self, model: str) -> str:
        if model in self._allowed:
            return model
        with self._lock:
            if len(self._allowed) <= MAX_MODEL_LABELS:
                self._allowed.add(model)
                return model
        return OTHER_MODEL


class TelemetryObserver:
    """A :class:`~app.providers.base.CallObserver` that records the provider metrics."""

    def __init__(self, instruments: Instruments, configured_model: str) -> None:
        self._i = instruments
        self._models = _BoundedModels(configured_model)
        self._labels: dict[tuple[str, str], dict[str, str]] = {}

    def on_call(self, event: CallEvent) -> None:
        spec = event.spec
        attributes = {PROVIDER: spec.provider, OPERATION: spec.operation, OUTCOME: event.outcome}
        if event.error_type is not None:
            attributes[ERROR_TYPE_LABEL] = event.error_type.value
        if event.health_check:  # its own operation name, no breaker: no request series at all
            self._i.health_check_duration.record(event.duration, attributes)
            return
        base = self._known(spec)
        self._i.request_duration.record(event.duration, attributes)
        self._i.call_wait.record(event.context.wait, base)
        ctx = event.context
        if ctx.ttfb is not None:
            self._i.time_to_first_byte.record(ctx.ttfb, base)
        if ctx.audio_seconds > 0:
            self._i.audio_duration.add(ctx.audio_seconds, base)
        if ctx.characters > 0:
            self._i.characters.add(ctx.characters, base)
        if event.spec.gen_ai_operation:
            self._gen_ai(event)

    def on_rejection(self, spec: CallSpec, reason: ErrorType) -> None:
        self._i.rejections.add(1, {**self._known(spec), REASON: reason.value})

    def on_breaker_change(self, spec: CallSpec, old: str, new: str) -> None:
        base = self._known(spec)
        self._i.circuit_state.set(STATE_VALUES[new], base)
        if new == "open":
            self._i.circuit_opened.add(1, base)

    def _known(self, spec: CallSpec) -> dict[str, str]:
        """The base labels of ``spec``; publishes its zero-valued series on first sight."""
        key = (spec.provider, spec.operation)
        base = self._labels.get(key)
        if base is None:
            base = self._labels[key] = {PROVIDER: spec.provider, OPERATION: spec.operation}
            self._i.circuit_state.set(0, base)
            self._i.circuit_opened.add(0, base)
            for reason in REJECTION_REASONS:
                self._i.rejections.add(0, {**base, REASON: reason.value})
        return base

    def _gen_ai(self, event: CallEvent) -> None:
        spec, ctx = event.spec, event.context
        attributes: dict[str, str] = {
            gen_ai.GEN_AI_OPERATION_NAME: spec.gen_ai_operation or "",
            gen_ai.GEN_AI_PROVIDER_NAME: spec.provider,
        }
        if spec.model:
            attributes[gen_ai.GEN_AI_REQUEST_MODEL] = self._models.label(spec.model)
        if event.error_type is not None:
            attributes[ERROR_TYPE] = event.error_type.value
        self._i.gen_ai_duration.record(event.duration, attributes)
        for kind, tokens in ((TOKEN_INPUT, ctx.input_tokens), (TOKEN_OUTPUT, ctx.output_tokens)):
            if tokens is not None:
                self._i.gen_ai_tokens.record(tokens, {**attributes, gen_ai.GEN_AI_TOKEN_TYPE: kind})


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
        self.tracer_provider = TracerProvider(resource=self.resource, shutdown_on_exit=False)
        readers = list(metric_readers)
        self._registry: CollectorRegistry | None = None
        if self.enabled:
            if span_exporter is not None:
                self.tracer_provider.add_span_processor(SimpleSpanProcessor(span_exporter))
            otlp_spans = _otlp_span_exporter()
            if otlp_spans is not None:
                self.tracer_provider.add_span_processor(BatchSpanProcessor(otlp_spans))
            otlp_metrics = _otlp_metric_reader(settings)
            if otlp_metrics is not None:
                readers.append(otlp_metrics)
            if settings.enable_metrics:
                readers.append(self._prometheus_reader())
        self.meter_provider = MeterProvider(metric_readers=readers, resource=self.resource, shutdown_on_exit=False)
        self.logger_provider: LoggerProvider | None = None
        """Set when log records are exported (OTLP); :meth:`attach_log_handler` feeds it."""
        otlp_logs = _otlp_log_exporter() if self.enabled else None
        if otlp_logs is not None:
            self.logger_provider = LoggerProvider(resource=self.resource, shutdown_on_exit=False)
            self.logger_provider.add_log_record_processor(MaskSecrets(secret_values(settings)))
            self.logger_provider.add_log_record_processor(BatchLogRecordProcessor(otlp_logs))
        self._log_handler: logging.Handler | None = None
        self.tracer = self.tracer_provider.get_tracer(SCOPE, __version__)
        self._state_health: Callable[[], StateHealth] | None = None
        self._bulkheads: Iterable[Bulkhead] = ()
        self.instruments = Instruments(self.meter_provider.get_meter(SCOPE, __version__), self._observe_state,
                                       self._observe_active, self._observe_limits)
        self.observer = TelemetryObserver(self.instruments, settings.openai_model)
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

    def record_loop_lag(self, seconds: float) -> None:
        self.instruments.event_loop_lag.record(seconds)

    def _observe_active(self, _: CallbackOptions) -> Iterable[Observation]:
        return [Observation(count, {PROVIDER: b.provider, OPERATION: operation})
                for b in self._bulkheads for operation, count in b.by_operation.items()]

    def _observe_limits(self, _: CallbackOptions) -> Iterable[Observation]:
        return [Observation(b.limit, {PROVIDER: b.provider}) for b in self._bulkheads]

    def _observe_state(self, _: CallbackOptions) -> Iterable[Observation]:
        if self._state_health is None:
            return []
        health = self._state_health()
        return [Observation(1 if health.status == "up" else 0, {BACKEND: health.backend})]

    def _prometheus_reader(self) -> MetricReader:
        from opentelemetry.exporter.prometheus import PrometheusMetricReader

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
        return [DefineMiddleware(ServerSpans, tracer=self.tracer_provider.get_tracer(SERVER_SCOPE, __version__))]

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


class ServerSpans:
    """ASGI middleware: one ``SERVER`` span per HTTP request, named ``{method} {route template}``.

    Installed as Litestar app middleware, so it runs after routing (``scope["path_template"]``
    is known; requests that match no route get no span). It continues the caller's trace from
    the propagators' headers (``traceparent``), carries the HTTP semantic-convention attributes,
    marks 5xx answers and exceptions as errors, and makes no per-message send/receive spans.
    """

    def __init__(self, app: ASGIApp, tracer: trace.Tracer, untraced: frozenset[str] = UNTRACED_ROUTES) -> None:
        self.app = app
        self.tracer = tracer
        self.untraced = untraced
        self.fields = frozenset(name.encode("latin-1") for name in propagate.get_global_textmap().fields)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = scope.get("path_template", "")
        if scope["type"] != ScopeType.HTTP or route in self.untraced:
            await self.app(scope, receive, send)
            return
        carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"] if k in self.fields}
        parent = propagate.extract(carrier) if carrier else None
        method = scope["method"]
        attributes: dict[str, Any] = {
            HTTP_REQUEST_METHOD: method, HTTP_ROUTE: route, URL_PATH: scope["path"],
            URL_SCHEME: scope["scheme"], NETWORK_PROTOCOL_VERSION: scope["http_version"],
        }
        if method not in HTTP_METHODS:
            attributes[HTTP_REQUEST_METHOD], attributes[HTTP_REQUEST_METHOD_ORIGINAL] = "_OTHER", method
        if client := scope.get("client"):
            attributes[CLIENT_ADDRESS] = client[0]
        span = self.tracer.start_span(f"{attributes[HTTP_REQUEST_METHOD]} {route}", parent, SpanKind.SERVER,
                                      attributes)
        token = context.attach(trace.set_span_in_context(span, parent))
        status = 0

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        error: str | None = None
        try:
            await self.app(scope, receive, send_status)
        except BaseException as exc:
            error = type(exc).__qualname__
            raise
        finally:
            context.detach(token)
            if status:
                span.set_attribute(HTTP_RESPONSE_STATUS_CODE, status)
            if error is None and status >= 500:
                error = str(status)
            if error is not None:
                span.set_attribute(ERROR_TYPE, error)
                span.set_status(Status(StatusCode.ERROR))
            span.end()


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


def _env(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


def _otlp_protocol(signal: str) -> str:
    name = f"OTEL_EXPORTER_OTLP_{signal}_PROTOCOL"
    if _env(name) is None:
        name = "OTEL_EXPORTER_OTLP_PROTOCOL"
    protocol = _env(name) or "http/protobuf"
    if protocol not in ("grpc", "http/protobuf"):
        raise ConfigError(name, "grpc or http/protobuf", protocol)
    return protocol


def _otlp_wanted(signal: str) -> bool:
    exporters = _env(f"OTEL_{signal}_EXPORTER")
    if exporters is not None and "otlp" not in [e.strip() for e in exporters.split(",")]:
        return False
    return _env("OTEL_EXPORTER_OTLP_ENDPOINT") is not None or _env(f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT") is not None


def _otlp_span_exporter() -> SpanExporter | None:
    if not _otlp_wanted("TRACES"):
        return None
    if _otlp_protocol("TRACES") == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter

        return GrpcSpanExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


def _otlp_log_exporter() -> LogRecordExporter | None:
    if not _otlp_wanted("LOGS"):
        return None
    if _otlp_protocol("LOGS") == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogExporter

        return GrpcLogExporter()
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter

    return OTLPLogExporter()


def _otlp_metric_reader(settings: Settings) -> MetricReader | None:
    if not _otlp_wanted("METRICS"):
        return None
    exporter: Any
    if _otlp_protocol("METRICS") == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
            OTLPMetricExporter as GrpcMetricExporter,
        )

        exporter = GrpcMetricExporter()
    else:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

        exporter = OTLPMetricExporter()
    # OTEL_METRIC_EXPORT_INTERVAL (ms), read by the reader, wins over METRICS_INTERVAL (s).
    interval = None if _env("OTEL_METRIC_EXPORT_INTERVAL") else settings.metrics_interval * 1000
    return PeriodicExportingMetricReader(exporter, export_interval_millis=interval)
