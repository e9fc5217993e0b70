"""In-app monitoring: the recorder, one source of alert rules, the evaluator, trends and health.

``Monitoring(settings)`` is one app's monitoring; its :attr:`Monitoring.observer` joins the call
pipeline's observers. The module-level :data:`monitoring` keeps the seed's style
(``from app.monitoring import monitoring; monitoring.record_request(...)``): it resolves to the
running app's instance (:func:`set_current`) or, without an app, to one built from the environment.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis

from ..background import cancel
from ..calls import CallObserver, ServiceKey
from ..config import Settings, get_settings
from ..logs import events
from ..resilience.shared_state import StateHealth
from .alertmanager import AlertmanagerClient, AlertmanagerError
from .evaluator import Alert, Evaluator
from .fleet import FleetRecorder, FleetStatus, local_status
from .history import Tiered, held, horizon, resolution
from .recorder import Recorder
from .rules import DEFAULT_RUNBOOK_BASE_URL, AlertRule, Severity, alert_rules
from .slo import Slo
from .slo_report import SloReport, slo_report
from .stats import Key
from .status import BreakerView, HealthStatus, OperationHealth, operation_health, overall, provider_health
from .trends import Trends, compute_trends, parse_window_step
from .usage import SpendToday, UsageRecorder, UsageReport, UsageSource, spend_to_date, spend_today, usage_report

__all__ = ["Alert", "HealthStatus", "Monitoring", "Trends", "current", "monitoring", "set_current"]

log = logging.getLogger("app.monitoring")
SEVERITIES: tuple[Severity, ...] = ("warning", "critical")
UNSPECIFIED_OPERATION = "unspecified"
"""Operation recorded for a seed-style ``record_request(service='sarvam')`` without one."""


class Monitoring:
    """One app's recorder and evaluator, and the seed's monitoring API over them."""

    def __init__(
        self,
        settings: Settings,
        clock: Callable[[], float] = time.time,
        *,
        runbook_base_url: str = DEFAULT_RUNBOOK_BASE_URL,
        generator_url: str = "/health/alerts",
        instance: str | None = None,
    ) -> None:
        """``instance``: this replica's label on ``GatewayEventLoopLagHigh`` (default: the host name)."""
        self.settings = settings
        self.clock = clock
        self.usage = UsageRecorder(settings.monitoring_bucket, settings.monitoring_horizon, clock)
        """Calls, billed units and cost per provider operation and client (``/health/usage``, ``/status``)."""
        recorder_args: dict[str, Any] = {
            "reset_timeouts": {name: svc.circuit_reset_time for name, svc in settings.services.items()},
            "instance": instance,
        }
        # With shared state the replicas share their buckets too (joined by :meth:`join_fleet`).
        kind = FleetRecorder if settings.state_redis_url else Recorder
        if settings.state_redis_url:
            recorder_args["window"] = settings.alerts.window
        self.recorder: Recorder = (
            FleetRecorder(settings.monitoring_bucket, settings.monitoring_horizon, clock, usage=self.usage,
                          **recorder_args)
            if settings.state_redis_url else Recorder(settings.monitoring_bucket, settings.monitoring_horizon, clock,
                                                      **recorder_args))
        slo = settings.alerts.slo
        self.history: Recorder = kind(resolution(slo), horizon(slo), clock, **recorder_args)
        """The coarse ring: the error-budget windows of 30 minutes and more (:mod:`.history`)."""
        self.recorder.spend_reader = self.spend_to_date
        self.rings = Tiered(self.recorder, self.history, held(slo))
        self.slo = Slo(slo)
        self.rules: tuple[AlertRule, ...] = alert_rules(settings.alerts, runbook_base_url)
        self.evaluator = Evaluator(self.rules, self.rings, eval_interval=settings.alerts.eval_interval)
        self._alertmanager = (AlertmanagerClient(settings.alertmanager_url, generator_url)
                              if settings.alertmanager_url else None)
        self._loop: asyncio.Task[None] | None = None
        self._delivery: asyncio.Task[int] | None = None

    @property
    def observer(self) -> CallObserver:
        """The pipeline hook that feeds the recorder's rings."""
        return self.rings

    def observe_state_backend(self, health: Callable[[], StateHealth]) -> None:
        """Evaluate ``GatewayStateBackendDown`` on ``health()``, read at each evaluation."""
        self.recorder.state_health = health

    def observe_saturation(self, reader: Callable[[], Mapping[str, tuple[int, int]]]) -> None:
        """Evaluate ``ProviderSaturated`` on ``reader()`` (per provider: calls in flight, limit),
        read at each evaluation."""
        self.recorder.saturation_reader = reader

    def join_fleet(self, client: Redis, health: Callable[[], StateHealth], prefix: str) -> None:
        """Share the recorded buckets through ``client`` (the shared state's Redis) while
        ``health()`` says it answers; reads are then the fleet's."""
        if isinstance(self.recorder, FleetRecorder) and isinstance(self.history, FleetRecorder):
            self.recorder.connect(client, health, prefix)
            self.history.connect(client, health, f"{prefix}:history")

    def fleet_status(self) -> FleetStatus:
        """Whose numbers the reads show (the fleet's or this replica's) and the replicas reporting."""
        now = self.clock()
        if isinstance(self.recorder, FleetRecorder):
            return self.recorder.status(now)
        return local_status(self.recorder, self.settings.alerts.window, now,
                            "no shared state store (STATE_REDIS_URL): this process's numbers only")

    def usage_report(self, window: float, window_text: str) -> UsageReport:
        """Calls, billed units and cost over ``window`` (the fleet's while its view is)."""
        return usage_report(self._usage_source(), self.clock(), window, window_text, self.recorder.view)

    def spend_today(self) -> SpendToday:
        """What each provider has cost this UTC day (the fleet's while its view is)."""
        return spend_today(self._usage_source(), self.clock())

    def spend_to_date(self, now: float | None = None) -> dict[tuple[str, str], float]:
        """USD per ``(provider, "day" | "month")`` spent this UTC day and month (the fleet's while its
        view is): ``provider_spend_usd`` and the monthly term of ``ProviderBudgetBurn``."""
        return spend_to_date(self._usage_source(), self.clock() if now is None else now)

    def _usage_source(self) -> UsageSource:
        if isinstance(self.recorder, FleetRecorder) and self.recorder.view == "fleet":
            return self.recorder.fleet_usage
        return self.usage

    @property
    def running(self) -> bool:
        """Whether the background evaluation loop runs (the app has started)."""
        return self._loop is not None and not self._loop.done()

    # -- the seed's API ------------------------------------------------------------------------

    def record_request(
        self, service: str, success: bool, latency_ms: float, error_type: str | None = None,
        operation: str | None = None,
    ) -> None:
        """Record one call; ``service`` is ``"sarvam"`` or ``"sarvam.tts"``."""
        provider, op = _subject(service)
        self.rings.record(provider, operation or op or UNSPECIFIED_OPERATION, success, latency_ms / 1000,
                          None if success else error_type)

    def get_health_status(self) -> HealthStatus:
        """Every provider operation seen so far, from the recorder's own view of the breakers."""
        now = self.clock()
        return self.health(self.recorder.keys(), lambda key: (
            self.recorder.breaker_state(key), self.recorder.rejecting(key, now)))

    def get_alerts(self, alert_type: str | None = None, severity: str | None = None) -> list[Alert]:
        """Pending and firing alerts, optionally of one severity (``warning`` or ``critical``)."""
        wanted = self._severity(severity or alert_type)
        self._ensure_fresh()
        return self.evaluator.alerts(wanted)

    # -- the rest ------------------------------------------------------------------------------

    def resolved_alerts(self, severity: str | None = None) -> list[Alert]:
        """Recently resolved alerts, newest first."""
        return self.evaluator.resolved(self._severity(severity))

    def evaluate(self, now: float | None = None) -> list[Alert]:
        """Evaluate every rule at ``now`` (default: the clock); delivery to Alertmanager, when
        configured, starts in the background if an event loop runs."""
        now = self.clock() if now is None else now
        alerts = self.evaluator.evaluate(now)
        if self._alertmanager is not None and (self._delivery is None or self._delivery.done()):
            with contextlib.suppress(RuntimeError):  # no running loop: deliver() is up to the caller
                self._delivery = asyncio.get_running_loop().create_task(self.deliver(now))
        return alerts

    async def deliver(self, now: float | None = None) -> int:
        """Send the alerts due to Alertmanager; the number sent (0 on failure, retried next time)."""
        if self._alertmanager is None:
            return 0
        now = self.clock() if now is None else now
        due = self.evaluator.due(now)
        if not due:
            return 0
        try:
            await self._alertmanager.post(due)
        except AlertmanagerError as error:
            # At most once per evaluation interval: no storm control needed.
            events.emit(logging.WARNING, events.ALERT_DELIVERY_FAILED,
                        f"alert delivery failed, retrying at the next evaluation: {error}",
                        alerts=len(due), error=str(error))
            return 0
        self.evaluator.sent(due, now)
        return len(due)

    def health(self, keys: Sequence[Key], breaker: BreakerView,
               extra_reasons: dict[str, list[str]] | None = None) -> HealthStatus:
        """Health of ``keys`` grouped by provider; ``extra_reasons`` per provider, and its firing
        provider-wide alerts, degrade it."""
        now = self.clock()
        window = self.settings.alerts.window
        alerts = self.get_alerts()
        by_provider: dict[str, list[OperationHealth]] = {}
        for key in keys:
            by_provider.setdefault(key[0], []).append(
                operation_health(self.recorder, key, breaker, alerts, window, now))
        reasons = {name: list(found) for name, found in (extra_reasons or {}).items()}
        for alert in alerts:  # about a whole provider (ProviderSaturated): no operation to degrade
            if alert.state == "firing" and alert.provider is not None and alert.operation is None:
                reasons.setdefault(alert.provider, []).append(f"alert firing: {alert.name}/{alert.severity}")
        providers = {name: provider_health(name, ops, reasons.get(name, ()))
                     for name, ops in by_provider.items()}
        return HealthStatus(
            status=overall(providers.values()), timestamp=datetime.fromtimestamp(now, UTC), window=window,
            providers=providers,
            firing_alerts=sum(a.state == "firing" for a in alerts),
            pending_alerts=sum(a.state == "pending" for a in alerts),
        )

    def slo_report(self, operations: Sequence[Key] | None = None) -> SloReport:
        """Objectives, SLIs, budget left and burn rates of ``operations`` (default: those recorded)."""
        keys = operations if operations is not None else self.recorder.keys()
        return slo_report(self.slo, self.rings, keys, self.clock())

    def trends(
        self, service: str, window: str | float = "1h", step: str | float = "5m",
        operations: Sequence[Key] | None = None,
    ) -> Trends:
        """Trends of ``"sarvam"`` (all its operations) or ``"sarvam.tts"``; ``operations`` are the
        served ones (default: those recorded). Raises KeyError for an unknown service and
        :class:`~app.monitoring.trends.TrendError` for a bad window or step."""
        try:
            provider, operation = _subject(service)
        except ValueError:
            raise KeyError(service) from None
        known = operations if operations is not None else self.recorder.keys()
        keys = [k for k in known if k[0] == provider and (not operation or k[1] == operation)]
        if not keys:
            raise KeyError(service)
        window_s, step_s = parse_window_step(window, step, self.settings.monitoring_bucket,
                                             self.settings.monitoring_horizon)
        return compute_trends(self.recorder, service, keys, window_s, step_s, self.clock())

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Evaluate every ``ALERT_EVAL_INTERVAL`` in the background."""
        if self._loop is None:
            for ring in (self.recorder, self.history):
                if isinstance(ring, FleetRecorder):
                    await ring.start()
            self._loop = asyncio.create_task(self._run(), name="alert-evaluator")

    async def stop(self) -> None:
        for task in (self._loop, self._delivery):
            await cancel(task)
        self._loop = self._delivery = None
        for ring in (self.recorder, self.history):
            if isinstance(ring, FleetRecorder):
                await ring.stop()
        if self._alertmanager is not None:
            await self._alertmanager.aclose()

    async def _run(self) -> None:
        while True:
            try:
                self.evaluate()
            except Exception:  # a failing evaluation must never stop the loop
                log.exception("alert evaluation failed")
            await asyncio.sleep(self.settings.alerts.eval_interval)

    def _ensure_fresh(self) -> None:
        """Without the background loop (seed-style use), evaluate on read, at most once an interval."""
        last = self.evaluator.last_evaluation
        if not self.running and (last is None or self.clock() - last >= self.settings.alerts.eval_interval):
            self.evaluate()

    @staticmethod
    def _severity(value: str | None) -> Severity | None:
        if value is None:
            return None
        for severity in SEVERITIES:
            if value == severity:
                return severity
        raise ValueError(f"severity must be warning or critical, not {value!r}")


def _subject(service: str) -> tuple[str, str | None]:
    """``"sarvam"`` (a whole provider) or ``"sarvam.tts"`` (one operation); a ``ValueError`` for
    anything else."""
    if "." not in service:
        return service, None
    key = ServiceKey.parse(service)
    return key.provider, key.operation


_current: Monitoring | None = None


def set_current(instance: Monitoring) -> None:
    """Make ``instance`` the one :data:`monitoring` resolves to (the app's ServiceManager does)."""
    global _current  # noqa: PLW0603 (the seed's module-level API resolves to the current app's)
    _current = instance


def current() -> Monitoring:
    """The current app's monitoring, or one built from the environment's settings."""
    global _current  # noqa: PLW0603 (as above)
    if _current is None:
        _current = Monitoring(get_settings())
    return _current


class _CurrentMonitoring:
    """The seed's module-level ``monitoring`` object."""

    def __getattr__(self, name: str) -> Any:
        return getattr(current(), name)


monitoring: Any = _CurrentMonitoring()
