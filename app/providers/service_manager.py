"""The service manager: builds the gateway's parts and keeps the seed's API over them.

The parts live in their own modules: the services (:mod:`.catalog`), fallbacks
(:mod:`.fallbacks`), active health checks (:mod:`.health_checks`), typed results (:mod:`.results`).

The seed's API is kept: ``service_manager.get_service('sarvam', 'tts')``,
``await service_manager.health_check_all()``, ``service_manager.get_metrics_summary()``.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict, cast

import httpx2

from ..calls import ServiceKey
from ..config import Settings, get_settings
from ..logs.observer import CallLog
from ..logs.storm import StormControl
from ..monitoring import Monitoring
from ..monitoring import set_current as set_current_monitoring
from ..monitoring.loop_lag import LoopLagProbe
from ..monitoring.status import HealthStatus
from ..resilience.ratelimit import RateLimiter
from ..resilience.shared_state import MEMORY_HEALTH, StateHealth
from ..telemetry import Telemetry
from .base import Pipeline
from .catalog import Services, operation_name
from .fallbacks import Fallbacks
from .health_checks import ActiveChecks
from .http_client import HEALTH_CHECK_HEADROOM, make_http_client
from .live import LiveUpstreams
from .rag import DocumentStore
from .service import CheckReport, HealthResult, ProviderService


class ProviderSummary(TypedDict):
    """One provider in the seed's ``get_metrics_summary()``."""

    mode: Literal["live", "simulated"]
    breakers: dict[str, str]
    last_health_check: CheckReport | None


class ServiceManager:
    """Builds the gateway's parts and holds them: the pipeline and its observers (telemetry,
    monitoring, the call log), one service per provider operation (:attr:`services`), the
    fallbacks (:attr:`fallbacks`) and the active health checks; it also answers what the health
    reports read (:class:`app.monitoring.reports.Gateway`)."""

    def __init__(self, settings: Settings | None = None, *, telemetry: Telemetry | None = None) -> None:
        self.settings = settings or get_settings()
        self.telemetry = telemetry or Telemetry(self.settings)
        self.monitoring = Monitoring(self.settings)
        self.storm = StormControl(self.settings.log_summary_interval)
        call_log = CallLog(self.storm)
        self.pipeline = Pipeline(
            self.settings, limiter=RateLimiter(),
            observers=[self.telemetry.observer, self.monitoring.observer, self.monitoring.usage, call_log],
            tracer=self.telemetry.tracer,
            hold_listeners=[call_log.on_hold], stream_observers=[self.telemetry.observer],
        )
        self.live = LiveUpstreams()
        if self.pipeline.shared is not None:
            self.pipeline.shared.listeners.append(call_log.on_state_backend)
            shared = self.pipeline.shared
            self.monitoring.join_fleet(shared.redis, shared.health, shared.prefix)
        # gateway_state_backend_up and GatewayStateBackendDown read the store's health when they need it.
        self.telemetry.observe_state_backend(self.state_backend)
        self.monitoring.observe_state_backend(self.state_backend)
        self.telemetry.observe_spend(self.monitoring.spend_to_date)
        bulkheads = self.pipeline.bulkheads.values()
        self.telemetry.observe_bulkheads(bulkheads)
        self.monitoring.observe_saturation(lambda: {b.provider: (b.in_flight, b.limit) for b in bulkheads})
        self.loop_lag = LoopLagProbe([self.telemetry.record_loop_lag, self.monitoring.recorder.record_loop_lag])
        self._http: dict[str, httpx2.AsyncClient] = {}
        self.store = DocumentStore(self.settings.rag_db_path)
        self.services = Services.build(self.pipeline, self.http, self.store)
        self.by_key = self.services.by_key()
        self.fallbacks = Fallbacks(self.settings, self.services)
        self.checks = ActiveChecks(self.services, self.settings.health_check_interval)

    # -- the seed's API ------------------------------------------------------------------------

    def get_service(self, provider: str, operation: str) -> ProviderService:
        """The service for a provider and operation (the seed's names accepted as aliases)."""
        try:
            return self.by_key[ServiceKey(provider.lower(), operation_name(operation))]
        except KeyError:
            known = ", ".join(str(key) for key in self.by_key)
            raise KeyError(f"no service {ServiceKey(provider, operation)}; known: {known}") from None

    @property
    def operations(self) -> list[tuple[str, str]]:
        return [(key.provider, key.operation) for key in self.by_key]

    @property
    def providers(self) -> list[str]:
        return list(dict.fromkeys(key.provider for key in self.by_key))

    async def health_check_all(self) -> dict[str, CheckReport]:
        """Actively check every provider once (cheap calls, no client rate-limit budget)."""
        return {p: r.as_dict() for p, r in (await self.checks.run()).items()}

    def get_metrics_summary(self) -> dict[str, ProviderSummary | HealthStatus]:
        """Per provider: breaker states, mode and last active check; ``monitoring``: the recorder's
        numbers over the alert window."""
        summary: dict[str, ProviderSummary | HealthStatus] = {}
        breakers = [(key, b.state) for key, b in self.pipeline.breakers.items()]
        for provider in self.providers:
            last = self.checks.last.get(provider)
            summary[provider] = ProviderSummary(
                mode=self.settings.get_service_config(provider).mode,
                breakers={key.operation: state for key, state in breakers if key.provider == provider},
                last_health_check=last.as_dict() if last is not None else None,
            )
        summary["monitoring"] = self.monitoring.get_health_status()
        return summary

    # -- what the health reports read ----------------------------------------------------------

    @property
    def last_health_checks(self) -> dict[str, HealthResult]:
        return self.checks.last

    def state_backend(self) -> StateHealth:
        """Where rate limits and breakers live (memory or Redis) and whether that store answers."""
        shared = self.pipeline.shared
        return shared.health() if shared is not None else MEMORY_HEALTH

    def breaker_view(self, key: tuple[str, str]) -> tuple[str, bool]:
        """``(state, rejecting)`` of an operation's breaker (closed until its first call)."""
        breaker = self.pipeline.breakers.get(ServiceKey(*key))
        if breaker is None:
            return "closed", False
        state = breaker.state
        return state, state == "open" and breaker.retry_after() > 0

    async def headroom(self, provider: str) -> int | None:
        try:
            return await self.pipeline.headroom(provider)
        except Exception:
            return None

    def concurrency(self, provider: str) -> tuple[int, int, dict[str, int]]:
        bulkhead = self.pipeline.bulkheads[provider]
        return bulkhead.limit, bulkhead.in_flight, dict(bulkhead.by_operation)

    # -- lifecycle -----------------------------------------------------------------------------

    def http(self, provider: str) -> httpx2.AsyncClient:
        """The provider's own connection pool, sized from its ``P_MAX_CONCURRENCY`` (so a hanging
        provider can never hold another's connections), with room for its health checks."""
        client = self._http.get(provider)
        if client is None:
            limit = self.settings.get_service_config(provider).max_concurrency
            client = self._http[provider] = make_http_client(self.telemetry, limit + HEALTH_CHECK_HEADROOM)
        return client

    async def start(self) -> None:
        await self.storm.start()
        await self.monitoring.start()
        self.loop_lag.start()
        self.checks.start()

    async def stop(self) -> None:
        await self.checks.stop()
        await self.monitoring.stop()
        await self.loop_lag.stop()
        clients, self._http = list(self._http.values()), {}
        for client in clients:
            await client.aclose()
        await self.live.close()
        await self.storm.stop()  # the last summaries, before the log export shuts down
        self.telemetry.shutdown()


_current: ServiceManager | None = None


def set_current(manager: ServiceManager) -> None:
    """Make ``manager`` the one the seed-style module object resolves to."""
    global _current  # noqa: PLW0603 (the seed's module-level API resolves to the current app's)
    _current = manager
    set_current_monitoring(manager.monitoring)


def current() -> ServiceManager:
    if _current is None:
        set_current(ServiceManager())
    assert _current is not None
    return _current


class _CurrentManager:
    """``service_manager``: the running app's manager (or one built from the environment)."""

    def __getattr__(self, name: str) -> Any:
        return getattr(current(), name)


service_manager = cast(ServiceManager, _CurrentManager())
