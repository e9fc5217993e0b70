"""The fault table: what each simulated provider should do wrong, and which request is next to fail."""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Annotated, Literal

import msgspec

ProviderName = Literal["sarvam", "deepgram", "openai"]

OPERATIONS: dict[str, tuple[str, ...]] = {
    "sarvam": ("translate", "tts", "stt"),
    "deepgram": ("stt", "tts", "health"),
    "openai": ("chat", "embeddings", "health"),
}
"""Operation names per provider; ``health`` is the cheap authenticated GET used by active health checks."""


class FaultSpec(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A fault for one provider, or for one operation of it (an operation's fault overrides the provider's)."""

    provider: Annotated[ProviderName, msgspec.Meta(description="Provider the fault applies to.")]
    operation: Annotated[
        str | msgspec.UnsetType,
        msgspec.Meta(
            description="One operation (sarvam: translate, tts, stt; deepgram: stt, tts, health; "
            "openai: chat, embeddings, health); left out, every route of the provider."
        ),
    ] = msgspec.UNSET
    error_rate: Annotated[
        float,
        msgspec.Meta(
            ge=0,
            le=1,
            description="Share of requests answered with `status_code`, deterministic: request n since the fault "
            "was set fails when floor(n*rate) > floor((n-1)*rate).",
        ),
    ] = 0.0
    status_code: Annotated[
        int,
        msgspec.Meta(
            ge=400, le=599, description="Status of injected errors, with the provider's error body."
        ),
    ] = 500
    retry_after: Annotated[
        int, msgspec.Meta(ge=0, le=3600, description="Seconds sent in `Retry-After` with injected 429s.")
    ] = 1
    latency_ms: Annotated[
        float, msgspec.Meta(ge=0, le=600_000, description="Delay added before answering every request.")
    ] = 0.0
    hang: Annotated[
        bool,
        msgspec.Meta(
            description="Never answer (until the client goes away, the fault is cleared, or 600 s)."
        ),
    ] = False
    malformed: Annotated[
        bool, msgspec.Meta(description="Answer 200 with a body that is not valid for the API.")
    ] = False
    truncate: Annotated[
        bool, msgspec.Meta(description="Streamed responses drop the connection after the first chunk.")
    ] = False
    chunk_delay_ms: Annotated[
        float, msgspec.Meta(ge=0, le=60_000, description="Delay between the chunks of streamed responses.")
    ] = 0.0


    @property
    def target(self) -> str | None:
        """The operation, or None for the whole provider."""
        return None if isinstance(self.operation, msgspec.UnsetType) else self.operation


class UnknownOperation(ValueError):
    """A fault names an operation its provider does not have."""


def check_operation(provider: str, operation: str | None) -> None:
    """Raise :class:`UnknownOperation` unless ``operation`` is None or one of the provider's operations."""
    if operation is not None and operation not in OPERATIONS[provider]:
        known = ", ".join(OPERATIONS[provider])
        raise UnknownOperation(
            f"unknown operation {operation!r} for provider {provider!r}; expected one of {known}"
        )


@dataclass
class ActiveFault:
    """A fault in the table, with per-operation request counters that start at zero when it is set."""

    spec: FaultSpec
    _seen: dict[str, int] = field(default_factory=dict)

    def next_request_fails(self, operation: str) -> bool:
        """Count one request for ``operation`` and say whether it is one of the ``error_rate`` share that fail."""
        n = self._seen.get(operation, 0) + 1
        self._seen[operation] = n
        rate = Fraction(repr(self.spec.error_rate))  # exact decimal, so 0.29 * 100 is 29, not 28.999...
        return math.floor(n * rate) > math.floor((n - 1) * rate)


class FaultTable:
    """Faults keyed by (provider, operation), where operation None means the whole provider."""

    def __init__(self) -> None:
        self._faults: dict[tuple[str, str | None], ActiveFault] = {}
        self._changed: asyncio.Future[None] | None = None

    def changed(self) -> asyncio.Future[None]:
        """A future done at the table's next change: waiting requests re-check their fault then,
        instead of polling the table."""
        if self._changed is None or self._changed.done():
            self._changed = asyncio.get_running_loop().create_future()
        return self._changed

    def _notify(self) -> None:
        if self._changed is not None and not self._changed.done():
            self._changed.set_result(None)

    def put(self, spec: FaultSpec) -> None:
        check_operation(spec.provider, spec.target)
        self._faults[(spec.provider, spec.target)] = ActiveFault(spec)
        self._notify()

    def clear(self, provider: str | None = None, operation: str | None = None) -> None:
        """Remove every fault, or a provider's faults, or (with ``operation``) one operation's fault."""
        if provider is None:
            self._faults.clear()
        elif operation is None:
            self._faults = {key: fault for key, fault in self._faults.items() if key[0] != provider}
        else:
            self._faults.pop((provider, operation), None)
        self._notify()

    def lookup(self, provider: str, operation: str) -> ActiveFault | None:
        """The fault in force for an operation: its own if set, else the provider-wide one."""
        return self._faults.get((provider, operation)) or self._faults.get((provider, None))

    def rows(self) -> list[FaultSpec]:
        return [fault.spec for fault in self._faults.values()]
