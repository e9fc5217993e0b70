"""The call vocabulary every layer shares: what a provider call is (its spec, its context, the
event it ends in), how it can fail (the closed set of error types), the observer protocol
telemetry, logs and monitoring implement, the service key and the latency buckets.

A leaf module: it imports nothing from ``app`` but the latency bounds (from :mod:`app.config_env`,
where the configuration checks ``SLO_LATENCY_THRESHOLD`` against them), so that the pipeline,
telemetry and monitoring all depend on it and never on each other.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final, Literal, Protocol

from opentelemetry.trace import INVALID_SPAN, Span

from . import config_env


@dataclass(frozen=True, order=True, slots=True)
class ServiceKey:
    """One operation of one provider. Written ``provider.operation`` wherever it is a name: the
    keys of ``/health/metrics``, trend and status URLs, alert labels' ``service``."""

    provider: str
    operation: str

    def __str__(self) -> str:
        return f"{self.provider}.{self.operation}"

    @classmethod
    def parse(cls, text: str) -> ServiceKey:
        """``"sarvam.tts"`` as a key; a ``ValueError`` names what is wrong with anything else."""
        provider, dot, operation = text.partition(".")
        if not dot or not provider or not operation or "." in operation:
            raise ValueError(f"{text!r} is not a service key of the form provider.operation")
        return cls(provider, operation)


Outcome = Literal["success", "error"]

LATENCY_BUCKETS: Final[tuple[float, ...]] = config_env.LATENCY_BUCKETS
"""Seconds; the provider call histograms and the in-app recorder share them (defined with the
configuration, which checks ``SLO_LATENCY_THRESHOLD`` against them)."""
LOOP_LAG_BUCKETS: Final[tuple[float, ...]] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)
"""Seconds of event-loop lag; ``ALERT_EVENT_LOOP_LAG_WARNING`` (0.1 s) is a bound, so its alert is exact."""


class ErrorType(StrEnum):
    """The closed set of error types every failed or rejected provider call ends in."""

    TIMEOUT = "timeout"
    CONNECTION = "connection"
    UPSTREAM_5XX = "upstream_5xx"
    UPSTREAM_4XX = "upstream_4xx"
    UPSTREAM_RATE_LIMITED = "upstream_rate_limited"
    UPSTREAM_MALFORMED = "upstream_malformed"
    AUTH = "auth"
    INVALID_INPUT = "invalid_input"
    CIRCUIT_OPEN = "circuit_open"
    RATE_LIMITED = "rate_limited"
    OVERLOADED = "overloaded"


STATUS: dict[ErrorType, int] = {
    ErrorType.TIMEOUT: 504,
    ErrorType.CONNECTION: 502,
    ErrorType.UPSTREAM_5XX: 502,
    ErrorType.UPSTREAM_4XX: 422,
    ErrorType.UPSTREAM_RATE_LIMITED: 429,
    ErrorType.UPSTREAM_MALFORMED: 502,
    ErrorType.AUTH: 502,
    ErrorType.INVALID_INPUT: 400,
    ErrorType.CIRCUIT_OPEN: 503,
    ErrorType.RATE_LIMITED: 429,
    ErrorType.OVERLOADED: 503,
}

TITLES: dict[ErrorType, str] = {
    ErrorType.TIMEOUT: "Upstream timeout",
    ErrorType.CONNECTION: "Upstream unreachable",
    ErrorType.UPSTREAM_5XX: "Upstream error",
    ErrorType.UPSTREAM_4XX: "Upstream rejected the request",
    ErrorType.UPSTREAM_RATE_LIMITED: "Upstream rate limit",
    ErrorType.UPSTREAM_MALFORMED: "Malformed upstream response",
    ErrorType.AUTH: "Upstream rejected the gateway's credentials",
    ErrorType.INVALID_INPUT: "Invalid input",
    ErrorType.CIRCUIT_OPEN: "Circuit open",
    ErrorType.RATE_LIMITED: "Rate limited",
    ErrorType.OVERLOADED: "Provider overloaded",
}

# Failures that say the provider is unwell; the caller's own mistakes never open a breaker.
BREAKER_FAILURES = frozenset({
    ErrorType.TIMEOUT, ErrorType.CONNECTION, ErrorType.UPSTREAM_5XX, ErrorType.UPSTREAM_RATE_LIMITED,
    ErrorType.UPSTREAM_MALFORMED, ErrorType.AUTH,
})
# Rejections by the gateway itself, before any provider is called.
REJECTIONS = frozenset({ErrorType.INVALID_INPUT, ErrorType.CIRCUIT_OPEN, ErrorType.RATE_LIMITED, ErrorType.OVERLOADED})


RELAYED_HEADERS = ("content-type", "retry-after", "x-request-id", "dg-request-id")
"""Headers of a provider's answer that the drop-in routes pass on to the caller (never cookies,
nothing naming the gateway's account)."""


@dataclass(frozen=True, slots=True)
class UpstreamAnswer:
    """A provider's HTTP answer as it was sent, for the drop-in routes to relay."""

    status: int
    body: bytes
    headers: dict[str, str]

    @classmethod
    def of(cls, status: int, body: bytes, headers: Mapping[str, str]) -> UpstreamAnswer:
        return cls(status, body, {name: headers[name] for name in RELAYED_HEADERS if name in headers})


class GatewayError(Exception):
    """A provider call that failed or was refused, with everything its problem answer needs."""

    def __init__(
        self,
        error_type: ErrorType,
        detail: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        provider: str | None = None,
        operation: str | None = None,
        upstream_status: int | None = None,
        upstream_request_id: str | None = None,
        upstream_answer: UpstreamAnswer | None = None,
    ) -> None:
        super().__init__(detail)
        self.error_type = error_type
        self.detail = detail
        self.status = status or STATUS[error_type]
        self.retry_after = retry_after
        self.provider = provider
        self.operation = operation
        self.upstream_status = upstream_status
        """The provider's HTTP status when it answered with an error (for the failed-call log)."""
        self.upstream_request_id = upstream_request_id
        """The provider's id of the failed request, when its answer named one (for its support)."""
        self.upstream_answer = upstream_answer
        """The provider's error answer itself, when it sent one (the drop-in routes relay it)."""

    @property
    def counts_as_breaker_failure(self) -> bool:
        return self.error_type in BREAKER_FAILURES

    @property
    def is_rejection(self) -> bool:
        return self.error_type in REJECTIONS


def invalid(detail: str, status: int = 400) -> GatewayError:
    """Invalid input: 400/422 bad values, 413 too large, 415 unsupported media type."""
    return GatewayError(ErrorType.INVALID_INPUT, detail, status=status)


@dataclass(frozen=True)
class CallSpec:
    """What is being called: names that become span names, attributes and metric labels."""

    provider: str
    operation: str
    model: str | None = None
    gen_ai_operation: str | None = None
    """GenAI operation (``chat``, ``embeddings``) for calls that follow the GenAI conventions."""

    @property
    def key(self) -> ServiceKey:
        return ServiceKey(self.provider, self.operation)

    @property
    def span_name(self) -> str:
        if self.gen_ai_operation:
            return f"{self.gen_ai_operation} {self.model}" if self.model else self.gen_ai_operation
        return f"{self.operation} {self.provider}"


@dataclass
class CallContext:
    """Mutable facts about one call, filled in by the pipeline and the service as they learn them."""

    spec: CallSpec
    span: Span = INVALID_SPAN
    """The provider span: started when the first attempt is admitted (or at a refusal), so that
    its duration is the provider's time, not the gateway's wait to admit the call."""
    began_ns: int = field(default_factory=time.time_ns)
    attempt: int = 0
    admission_wait: float = 0.0
    """Seconds the current attempt took to be admitted (hold, bulkhead, limits, breaker, the
    shared-state round trip)."""
    connect_wait: float = 0.0
    """Seconds the current attempt took to get a connection, added by the HTTP client's connector."""
    input_tokens: int | None = None
    output_tokens: int | None = None
    characters: int = 0
    """Text characters sent (translate, TTS)."""
    audio_seconds: float = 0.0
    """Seconds of audio received (STT) or produced (TTS)."""
    response_model: str | None = None
    ttfb: float | None = None
    """Seconds to the first byte of a streamed answer."""

    @property
    def wait(self) -> float:
        """Seconds the current attempt waited inside the gateway before its request was written."""
        return self.admission_wait + self.connect_wait


@dataclass(frozen=True)
class CallEvent:
    """One attempt that reached the provider, as telemetry and monitoring see it."""

    spec: CallSpec
    outcome: Outcome
    error_type: ErrorType | None
    duration: float
    """The provider's time: from the request being written to the answer (or failure)."""
    context: CallContext
    health_check: bool = False
    error: GatewayError | None = None
    """The categorised failure (``None`` on success), with what the provider said about it."""


class CallObserver(Protocol):
    """Hooks for telemetry and monitoring; they must be cheap and must not raise."""

    def on_call(self, event: CallEvent) -> None: ...

    def on_rejection(self, spec: CallSpec, reason: ErrorType) -> None: ...

    def on_breaker_change(self, spec: CallSpec, old: str, new: str) -> None: ...


class Relay(Protocol):
    """A streamed answer being relayed: its chunks as they arrive, and ``aclose`` to end it early
    (a caller that went away), which still ends the call and frees what it holds."""

    def __aiter__(self) -> Relay: ...

    async def __anext__(self) -> bytes: ...

    async def aclose(self) -> None: ...
