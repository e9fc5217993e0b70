"""The call observer that records the provider metrics.

* ``error_type`` is recorded on failed calls only. The Prometheus exporter fills a missing label
  with ``""``, so success series read ``error_type=""``, which PromQL treats as absent.
* Active health checks go to ``provider.health_check.duration``, never to the request metrics.
* Per (provider, operation), the first sighting publishes ``provider_circuit_state`` 0 and the
  opened and rejection counters at 0, so that ``increase()`` sees their first real increment.
* ``gen_ai.request.model`` is bounded: the configured chat model plus at most
  :data:`MAX_MODEL_LABELS` other values; later ones are recorded as :data:`OTHER_MODEL`. The cost and
  usage counters' ``model`` label is bounded the same way, and their ``client`` label takes the
  names of ``GATEWAY_API_KEYS`` (and ``anonymous``), so it is bounded by the configuration.
"""

from __future__ import annotations

import threading
from typing import Final

from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai
from opentelemetry.semconv.attributes.error_attributes import ERROR_TYPE

from ..calls import CallEvent, CallSpec, Direction, ErrorType
from ..pricing import billed_usage
from ..resilience.breaker import STATE_VALUES
from .instruments import (
    CLIENT,
    DIRECTION,
    ERROR_TYPE_LABEL,
    MODEL,
    OPERATION,
    OUTCOME,
    PROVIDER,
    REASON,
    REJECTION_REASONS,
    TOKEN_INPUT,
    TOKEN_OUTPUT,
    UNIT,
    Instruments,
)
from .spend import Labels, SpendTotals

MAX_MODEL_LABELS: Final = 10
OTHER_MODEL: Final = "_other"


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
    """A :class:`~app.calls.CallObserver` and :class:`~app.calls.StreamObserver` that records the
    provider metrics."""

    def __init__(self, instruments: Instruments, configured_model: str, spend: SpendTotals) -> None:
        self._i = instruments
        self._spent = spend
        self._models = _BoundedModels(configured_model)
        self._labels: dict[tuple[str, str], dict[str, str]] = {}
        self._directions: dict[tuple[str, str, str], dict[str, str]] = {}

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
        if event.outcome == "success":
            self._spend(event)

    def on_rejection(self, spec: CallSpec, reason: ErrorType) -> None:
        self._i.rejections.add(1, {**self._known(spec), REASON: reason.value})

    def on_breaker_change(self, spec: CallSpec, old: str, new: str) -> None:
        base = self._known(spec)
        self._i.circuit_state.set(STATE_VALUES[new], base)
        if new == "open":
            self._i.circuit_opened.add(1, base)

    def on_stream_open(self, spec: CallSpec) -> None:
        self._i.stream_sessions_active.add(1, self._known(spec))

    def on_stream_messages(self, spec: CallSpec, direction: Direction, count: int) -> None:
        key = (spec.provider, spec.operation, direction)
        labels = self._directions.get(key)
        if labels is None:
            labels = self._directions[key] = {**self._known(spec), DIRECTION: direction}
        self._i.stream_messages.add(count, labels)

    def on_stream_end(self, spec: CallSpec, seconds: float, first_result: float | None) -> None:
        base = self._known(spec)
        self._i.stream_sessions_active.add(-1, base)
        self._i.stream_session_duration.record(seconds, base)
        if first_result is not None:
            self._i.stream_first_result.record(first_result, base)

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

    def _spend(self, event: CallEvent) -> None:
        """Usage in billed units and cost, by client (the model bounded like the GenAI ones)."""
        spec, ctx = event.spec, event.context
        labels: Labels = ((PROVIDER, spec.provider), (OPERATION, spec.operation),
                  (MODEL, self._models.label(spec.model) if spec.model else ""), (CLIENT, ctx.client))
        usage: dict[Labels, float] = {(*labels, (UNIT, unit)): amount
                                      for unit, amount in billed_usage(ctx).items() if amount}
        self._spent.add(labels, ctx.cost_usd, usage)

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
