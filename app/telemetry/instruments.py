"""Every instrument of the gateway, created in one place, with the names and attribute keys of
the provider metrics.

* Names translate alike on ``/metrics`` and through Prometheus 3's OTLP receiver: dots to
  underscores, the unit as a suffix (``s``: ``_seconds``), ``_total`` on counters; units in
  braces are annotations, dropped by both. A unit of ``1`` would add ``_ratio`` to a gauge over
  OTLP only, so the two state gauges say ``{state}``.
* Histogram bounds are floats, so ``/metrics`` writes ``le="5.0"`` and ``le="10.0"`` (the spelling
  Prometheus 3 normalises scraped bounds to); over OTLP Prometheus writes ``le="5"``.
* ``gateway_state_backend_up``, ``provider_client_active_requests``,
  ``provider_client_concurrency_limit`` and ``provider_spend_usd`` are observable gauges: each
  collection (a scrape, an OTLP export) reads them at that moment, so they need no listener and are
  never stale. The cost and
  usage counters are observable too, over :class:`~.spend.SpendTotals` (cheaper per call).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Final

from opentelemetry.metrics import CallbackOptions, Meter, Observation
from opentelemetry.semconv._incubating.metrics import gen_ai_metrics

from ..calls import LATENCY_BUCKETS, LOOP_LAG_BUCKETS, ErrorType

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
COST: Final = "provider.client.cost.usd"  # provider_client_cost_usd_total
USAGE: Final = "provider.client.usage"  # provider_client_usage_total
SPEND: Final = "provider.spend.usd"  # provider_spend_usd
HEALTH_CHECK_DURATION: Final = "provider.health_check.duration"  # provider_health_check_duration_seconds
STATE_BACKEND_UP: Final = "gateway.state.backend.up"  # gateway_state_backend_up
ACTIVE_REQUESTS: Final = "provider.client.active_requests"  # provider_client_active_requests
CONCURRENCY_LIMIT: Final = "provider.client.concurrency_limit"  # provider_client_concurrency_limit
CALL_WAIT: Final = "gateway.call.wait"  # gateway_call_wait_seconds
EVENT_LOOP_LAG: Final = "gateway.event_loop.lag"  # gateway_event_loop_lag_seconds
STREAM_SESSIONS_ACTIVE: Final = "provider.stream.sessions.active"  # provider_stream_sessions_active
STREAM_SESSION_DURATION: Final = "provider.stream.session.duration"  # provider_stream_session_duration_seconds
STREAM_FIRST_RESULT: Final = "provider.stream.time_to_first_result"  # provider_stream_time_to_first_result_seconds
STREAM_MESSAGES: Final = "provider.stream.messages"  # provider_stream_messages_total
SESSION_BUCKETS: Final[tuple[float, ...]] = (1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
"""Seconds a live session lasts: from a short command to the hour ``P_MAX_STREAM_SECONDS`` allows."""

# Attribute keys of the provider metrics: plain names, identical in OTLP and in Prometheus.
PROVIDER: Final = "provider"
OPERATION: Final = "operation"
OUTCOME: Final = "outcome"
ERROR_TYPE_LABEL: Final = "error_type"
REASON: Final = "reason"
DIRECTION: Final = "direction"
MODEL: Final = "model"
CLIENT: Final = "client"
UNIT: Final = "unit"
BACKEND: Final = "backend"
PERIOD: Final = "period"
TOKEN_INPUT: Final = "input"
TOKEN_OUTPUT: Final = "output"
REJECTION_REASONS: Final = (ErrorType.CIRCUIT_OPEN, ErrorType.RATE_LIMITED, ErrorType.INVALID_INPUT,
                            ErrorType.OVERLOADED, ErrorType.BUDGET_EXCEEDED)


Observer = Callable[[CallbackOptions], Iterable[Observation]]


class Instruments:
    """Every instrument of the gateway, created in this one place; the observable gauges read
    their values through ``observe_state`` (the shared state store's health), ``observe_active``
    and ``observe_limits`` (the bulkheads) and ``observe_spend`` (the spend this day and month)
    when they are collected, so they cost nothing per call."""

    def __init__(self, meter: Meter, observe_state: Observer, observe_active: Observer,
                 observe_limits: Observer, observe_cost: Observer, observe_usage: Observer,
                 observe_spend: Observer) -> None:
        self.request_duration = meter.create_histogram(
            REQUEST_DURATION, unit="s", description="Duration of provider call attempts.",
            explicit_bucket_boundaries_advisory=LATENCY_BUCKETS)
        self.rejections = meter.create_counter(
            REJECTIONS, unit="{rejection}", description="Calls refused before reaching the provider.")
        self.circuit_state = meter.create_gauge(
            CIRCUIT_STATE, unit="{state}", description="Circuit breaker state: 0 closed, 1 half-open, 2 open.")
        self.circuit_opened = meter.create_counter(
            CIRCUIT_OPENED, unit="{transition}", description="Times a circuit breaker opened.")
        self.time_to_first_byte = meter.create_histogram(
            TIME_TO_FIRST_BYTE, unit="s", description="Time to the first byte of streamed answers.",
            explicit_bucket_boundaries_advisory=LATENCY_BUCKETS)
        self.audio_duration = meter.create_counter(
            AUDIO_DURATION, unit="s", description="Seconds of audio sent to or received from providers.")
        self.characters = meter.create_counter(
            CHARACTERS, unit="{character}", description="Text characters sent to providers.")
        self.cost = meter.create_observable_counter(
            COST, callbacks=[observe_cost], unit="{USD}",
            description="What provider calls cost, in US dollars, by client (calls whose price is unknown are not "
                        "in it).")
        self.usage = meter.create_observable_counter(
            USAGE, callbacks=[observe_usage], unit="{unit}",
            description="Provider usage in the units calls are billed by, by client.")
        self.spend = meter.create_observable_gauge(
            SPEND, callbacks=[observe_spend], unit="{USD}",
            description="What each provider has cost this UTC day or month (period), in US dollars: the fleet's "
                        "with shared state, else this process's since it started.")
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
            STATE_BACKEND_UP, callbacks=[observe_state], unit="{state}",
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
        self.stream_sessions_active = meter.create_up_down_counter(
            STREAM_SESSIONS_ACTIVE, unit="{session}", description="Live (WebSocket) sessions open with providers.")
        self.stream_session_duration = meter.create_histogram(
            STREAM_SESSION_DURATION, unit="s", description="How long live sessions lasted.",
            explicit_bucket_boundaries_advisory=SESSION_BUCKETS)
        self.stream_first_result = meter.create_histogram(
            STREAM_FIRST_RESULT, unit="s", description="Time from a live session's start to its first result "
                                                       "(a transcript, or audio).",
            explicit_bucket_boundaries_advisory=LATENCY_BUCKETS)
        self.stream_messages = meter.create_counter(
            STREAM_MESSAGES, unit="{message}", description="Messages relayed by live sessions (direction in: "
                                                          "caller to provider; out: provider to caller).")
        self.event_loop_lag = meter.create_histogram(
            EVENT_LOOP_LAG, unit="s", description="How late the event loop ran a timer: the process's saturation.",
            explicit_bucket_boundaries_advisory=LOOP_LAG_BUCKETS)
