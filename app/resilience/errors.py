"""The closed set of error types every failed or rejected provider call ends in."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum


class ErrorType(StrEnum):
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
