"""The in-app alert evaluator, with Prometheus's alerting-rule semantics.

At each evaluation (time ``now``), every rule's condition (its kind's class in
:mod:`app.monitoring.conditions`) is computed from a :class:`~app.monitoring.stats.WindowSource`:
per provider operation over the rule's window, per
state backend now (``GatewayStateBackendDown``), per provider (``ProviderSaturated``: its
``overloaded`` refusals over the window summed over operations, else its highest in-flight share of
the limit now) or per replica (``GatewayEventLoopLagHigh``: the p99 of its lag histogram over the
window). Like Prometheus 3's ``AlertingRule.Eval``:

* a condition that holds and has no active alert starts one, ``pending``, with ``since`` (Prometheus's
  ``activeAt``) = ``now``; an active alert gets the new value and annotations;
* a pending alert fires at the first evaluation where ``now - since >= for``, so ``for: 0`` fires
  at once;
* when the condition stops holding, a pending alert is dropped and a firing one is resolved; a
  resolved alert is kept (for Alertmanager) for 15 minutes and is listed in a bounded history;
* the warning and critical rules are separate rules, so both are listed when both hold.

Notifications follow Prometheus too: firing alerts are (re-)sent when not sent for ``resend_delay``
(1 minute) with ``endsAt = now + 4 * max(resend_delay, eval_interval)``, and a resolved alert is
sent with ``endsAt`` = its resolution time until 15 minutes after it resolved.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from ..calls import ServiceKey
from ..logs import events
from .conditions import AlertKey, Reading
from .rules import AlertRule, Severity
from .stats import WindowSource
from .templates import render

AlertState = Literal["pending", "firing", "resolved"]
AlertId = tuple[str, str, AlertKey]
"""(alertname, severity, key)."""
RESOLVED_RETENTION = 15 * 60.0
"""Seconds a resolved alert is still sent to Alertmanager (Prometheus's ``resolvedRetention``)."""
RESEND_DELAY = 60.0
"""Seconds between re-sends of a firing alert (Prometheus's ``--rules.alert.resend-delay``)."""


def _utc(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


@dataclass(frozen=True)
class Alert:
    """One alert as ``/health/alerts`` and the Python API show it."""

    name: str
    severity: Severity
    provider: str | None
    """None (null in JSON) for an alert about the gateway rather than a provider:
    ``GatewayStateBackendDown`` says which store in ``labels["backend"]``, ``GatewayEventLoopLagHigh``
    which replica in ``labels["instance"]``."""
    operation: str | None
    """None for an alert about a whole provider (``ProviderSaturated``) or about the gateway."""
    state: AlertState
    since: datetime
    """When the condition started holding (Prometheus's ``activeAt``)."""
    value: float
    threshold: float
    labels: dict[str, str]
    annotations: dict[str, str]
    fired_at: datetime | None = None
    resolved_at: datetime | None = None

    @property
    def subject(self) -> str:
        """What the alert is about, for people: ``sarvam.translate``, ``sarvam``, ``redis state
        backend`` or ``gateway-a event loop``."""
        if self.provider is not None:
            return str(ServiceKey(self.provider, self.operation)) if self.operation is not None else self.provider
        if backend := self.labels.get("backend"):
            return f"{backend} state backend"
        if instance := self.labels.get("instance"):
            return f"{instance} event loop"
        return self.name


@dataclass
class _Active:
    rule: AlertRule
    key: AlertKey
    value: float
    active_at: float
    state: Literal["pending", "firing", "inactive"] = "pending"
    fired_at: float | None = None
    resolved_at: float | None = None
    last_sent_at: float | None = None
    annotations: dict[str, str] = field(default_factory=dict)

    @property
    def labels(self) -> dict[str, str]:
        """Like Prometheus: the expression's labels (an empty value is no label) and the rule's."""
        by = {name: value for name, value in zip(self.rule.by, self.key, strict=True) if value}
        return {"alertname": self.rule.name, **by, **self.rule.labels}

    def snapshot(self) -> Alert:
        state: AlertState = "resolved" if self.state == "inactive" else self.state
        labels = self.labels
        return Alert(
            self.rule.name, self.rule.severity, labels.get("provider"), labels.get("operation"), state,
            _utc(self.active_at), self.value, self.rule.threshold, labels, dict(self.annotations),
            _utc(self.fired_at) if self.fired_at is not None else None,
            _utc(self.resolved_at) if self.resolved_at is not None else None,
        )


@dataclass(frozen=True)
class Notification:
    """One alert as Alertmanager's ``POST /api/v2/alerts`` takes it."""

    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: datetime
    ends_at: datetime
    ident: AlertId

    def payload(self, generator_url: str) -> dict[str, object]:
        return {"labels": self.labels, "annotations": self.annotations,
                "startsAt": self.starts_at.isoformat(), "endsAt": self.ends_at.isoformat(),
                "generatorURL": generator_url}


def _log_transition(active: _Active) -> None:
    """``alert.transition``: an alert became pending, fired or resolved (bounded by the rules and
    their label sets per evaluation, so never a storm)."""
    alert = active.snapshot()
    events.emit(
        logging.WARNING if alert.state == "firing" else logging.INFO, events.ALERT_TRANSITION,
        f"alert {alert.name} ({alert.severity}) {alert.state} for {alert.subject}: "
        f"value {alert.value:g}, threshold {alert.threshold:g}",
        alertname=alert.name, severity=alert.severity, state=alert.state, provider=alert.provider,
        operation=alert.operation, backend=alert.labels.get("backend"), value=alert.value,
        threshold=alert.threshold, runbook_url=alert.annotations.get("runbook_url"),
    )


class Evaluator:
    """Evaluates ``rules`` against ``source``; call :meth:`evaluate` at a steady interval."""

    def __init__(
        self, rules: Sequence[AlertRule], source: WindowSource, *, eval_interval: float = 15.0,
        resend_delay: float = RESEND_DELAY, history: int = 100,
    ) -> None:
        self.rules = tuple(rules)
        self.source = source
        self.eval_interval = eval_interval
        self.resend_delay = resend_delay
        self.last_evaluation: float | None = None
        self._active: dict[AlertId, _Active] = {}
        self._history: deque[Alert] = deque(maxlen=history)

    def evaluate(self, now: float) -> list[Alert]:
        """One evaluation at ``now``; returns the pending and firing alerts."""
        reading = Reading(self.source, now)
        for rule in self.rules:
            self._evaluate_rule(rule, reading, rule.condition.holding(rule, reading), now)
        self.last_evaluation = now
        return self.alerts()

    def _evaluate_rule(self, rule: AlertRule, reading: Reading, holding: Mapping[AlertKey, float],
                       now: float) -> None:
        """Moves the rule's alerts on, given the value of each key whose condition holds now."""
        for key, value in holding.items():
            ident: AlertId = (rule.name, rule.severity, key)
            alert = self._active.get(ident)
            started = alert is None or alert.state == "inactive"
            if alert is None or alert.state == "inactive":
                alert = self._active[ident] = _Active(rule, key, value, now)
            alert.value = value
            alert.annotations = self._annotations(rule, alert.labels, value,
                                                  rule.condition.queries(rule, reading, key))
            if started:
                _log_transition(alert)
        for ident, alert in list(self._active.items()):
            if ident[:2] != (rule.name, rule.severity):
                continue
            if alert.key not in holding:
                if alert.state == "pending" or (
                        alert.resolved_at is not None and now - alert.resolved_at > RESOLVED_RETENTION):
                    del self._active[ident]
                if alert.state == "firing":
                    alert.state, alert.resolved_at = "inactive", now
                    self._history.appendleft(alert.snapshot())
                    _log_transition(alert)
                continue
            if alert.state == "pending" and now - alert.active_at >= rule.for_:
                alert.state, alert.fired_at = "firing", now
                _log_transition(alert)

    @staticmethod
    def _annotations(rule: AlertRule, labels: dict[str, str], value: float,
                     queries: Mapping[str, float]) -> dict[str, str]:
        found = {"summary": rule.summary, "description": render(rule.description, labels, value),
                 "runbook_url": rule.runbook_url}
        if rule.budget_left is not None:
            found["budget_left"] = render(rule.budget_left, labels, value, queries)
        return found

    def alerts(self, severity: Severity | None = None) -> list[Alert]:
        """Pending and firing alerts, critical first, then by name and labels."""
        found = [a.snapshot() for a in self._active.values()
                 if a.state != "inactive" and (severity is None or a.rule.severity == severity)]
        return sorted(found, key=lambda a: (a.severity != "critical", a.name, a.provider or "", a.operation or "",
                                            sorted(a.labels.items())))

    def resolved(self, severity: Severity | None = None) -> list[Alert]:
        """Recently resolved alerts, newest first (bounded)."""
        return [a for a in self._history if severity is None or a.severity == severity]

    def due(self, now: float) -> list[Notification]:
        """Alerts Alertmanager should hear about now; :meth:`sent` marks them once delivered."""
        notifications = []
        for ident, alert in self._active.items():
            if alert.state == "pending" or not self._needs_sending(alert, now):
                continue
            assert alert.fired_at is not None
            ends_at = alert.resolved_at if alert.resolved_at is not None else (
                now + 4 * max(self.resend_delay, self.eval_interval))
            notifications.append(Notification(alert.labels, dict(alert.annotations), _utc(alert.fired_at),
                                              _utc(ends_at), ident))
        return notifications

    def _needs_sending(self, alert: _Active, now: float) -> bool:
        if alert.last_sent_at is None:
            return True
        if alert.resolved_at is not None and alert.resolved_at > alert.last_sent_at:
            return True
        return alert.last_sent_at + self.resend_delay < now

    def sent(self, notifications: Iterable[Notification], now: float) -> None:
        for notification in notifications:
            alert = self._active.get(notification.ident)
            if alert is not None:
                alert.last_sent_at = now
