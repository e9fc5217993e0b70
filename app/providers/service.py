"""What every provider service shares: its configuration, the pipeline and the HTTP client."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx2

from ..config import ServiceConfig
from ..resilience.errors import ErrorType, GatewayError
from .base import CallContext, CallSpec, Pipeline


@dataclass(frozen=True)
class HealthResult:
    """One active check of a provider."""

    provider: str
    operation: str
    status: str
    """``up`` or ``down``."""
    latency_ms: float
    checked_at: float
    error_type: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"provider": self.provider, "operation": self.operation, "status": self.status,
                "latency_ms": round(self.latency_ms, 3), "checked_at": self.checked_at,
                "error_type": self.error_type}


class ProviderService:
    """One operation of one provider; every call goes through :attr:`pipeline`."""

    provider: str = ""
    operation: str = ""

    def __init__(self, pipeline: Pipeline, http: Callable[[], httpx2.AsyncClient]) -> None:
        self.pipeline = pipeline
        self._http = http

    @property
    def cfg(self) -> ServiceConfig:
        return self.pipeline.settings.get_service_config(self.provider)

    @property
    def http(self) -> httpx2.AsyncClient:
        return self._http()

    @property
    def base_url(self) -> str:
        if self.cfg.base_url is None:
            raise GatewayError(ErrorType.CONNECTION, f"{self.provider} has no base URL configured")
        return self.cfg.base_url

    def spec(self, model: str | None = None) -> CallSpec:
        return CallSpec(self.provider, self.operation, model)

    def api_key(self) -> str:
        from ..simulator import SIM_API_KEY

        key = self.cfg.api_key
        return key.get_secret_value() if key is not None else SIM_API_KEY

    async def health_check(self) -> HealthResult:
        """A cheap call through the pipeline that spends no client rate-limit budget."""
        started = time.perf_counter()
        try:
            await self.pipeline.call(CallSpec(self.provider, "health"), self._probe, health_check=True)
        except GatewayError as error:
            return HealthResult(self.provider, "health", "down", (time.perf_counter() - started) * 1000,
                                time.time(), error.error_type.value)
        return HealthResult(self.provider, "health", "up", (time.perf_counter() - started) * 1000,
                            time.time())

    async def _probe(self, ctx: CallContext) -> object:
        """The provider's cheapest authenticated call."""
        raise NotImplementedError
