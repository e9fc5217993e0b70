"""How a provider's HTTP errors look: one builder per provider, and the status its SDK takes as "bad key"."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from litestar import Response


class ErrorFactory(Protocol):
    """Builds a provider's error response for a status code (with its default message when none is given, and a
    new request id unless one is given: the gateway's drop-in routes write their own refusals with these too)."""

    def __call__(
        self,
        status_code: int,
        message: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        request_id: str | None = None,
    ) -> Response[Any]: ...


@dataclass(frozen=True)
class ErrorShape:
    """One provider's errors: its name, the status it answers a bad key with, and its error builder."""

    name: str
    auth_status: int
    error: ErrorFactory
