"""How a provider call shows in its span: the attributes it starts with, the GenAI usage it ends
with, and how a failure marks it."""

from __future__ import annotations

import asyncio
from typing import Any

from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai
from opentelemetry.semconv.attributes import error_attributes
from opentelemetry.trace import Span, Status, StatusCode

from ..calls import CallContext, CallSpec, GatewayError

COST_ATTRIBUTE = "gateway.cost.usd"
"""Span attribute: what the call cost in USD (set once it succeeded and its price is known)."""
CLIENT_ATTRIBUTE = "gateway.client"
"""Span attribute: the client the call is attributed to (a key's name, or ``anonymous``)."""


def span_attributes(spec: CallSpec) -> dict[str, Any]:
    attributes: dict[str, Any] = {"provider": spec.provider, "operation": spec.operation}
    if spec.gen_ai_operation:
        attributes[gen_ai.GEN_AI_OPERATION_NAME] = spec.gen_ai_operation
        attributes[gen_ai.GEN_AI_PROVIDER_NAME] = spec.provider
        if spec.model:
            attributes[gen_ai.GEN_AI_REQUEST_MODEL] = spec.model
    return attributes


def usage_attributes(ctx: CallContext) -> None:
    span = ctx.span
    if ctx.input_tokens is not None:
        span.set_attribute(gen_ai.GEN_AI_USAGE_INPUT_TOKENS, ctx.input_tokens)
    if ctx.output_tokens is not None:
        span.set_attribute(gen_ai.GEN_AI_USAGE_OUTPUT_TOKENS, ctx.output_tokens)
    if ctx.response_model:
        span.set_attribute(gen_ai.GEN_AI_RESPONSE_MODEL, ctx.response_model)
    if ctx.client:
        span.set_attribute(CLIENT_ATTRIBUTE, ctx.client)
    if ctx.cost_usd is not None:
        span.set_attribute(COST_ATTRIBUTE, ctx.cost_usd)


def mark_span(span: Span, exc: BaseException) -> None:
    if isinstance(exc, GatewayError):
        span.set_attribute(error_attributes.ERROR_TYPE, exc.error_type.value)
        span.set_status(Status(StatusCode.ERROR, exc.detail))
    elif isinstance(exc, asyncio.CancelledError | GeneratorExit):
        span.set_attribute(error_attributes.ERROR_TYPE, "cancelled")
    else:
        span.set_attribute(error_attributes.ERROR_TYPE, type(exc).__qualname__)
        span.set_status(Status(StatusCode.ERROR, type(exc).__qualname__))


def end_span(span: Span, exc: BaseException | None) -> None:
    if exc is not None:
        mark_span(span, exc)
    span.end()
