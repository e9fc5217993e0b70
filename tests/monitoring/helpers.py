"""A controllable clock and monitoring built from environment-style settings."""

from __future__ import annotations

from collections.abc import Mapping

from app.config import Settings, load_settings
from app.monitoring import Monitoring

T0 = 1_699_999_200.0
"""A round start time: a multiple of an hour, so of every bucket and step the tests use."""


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


def settings(env: Mapping[str, str] | None = None) -> Settings:
    base = {"ALERT_WINDOW": "5m", "ALERT_FOR": "1m", "ALERT_EVAL_INTERVAL": "15s", "ALERT_MIN_REQUESTS": "10"}
    return load_settings({**base, **(env or {})})


def monitoring(env: Mapping[str, str] | None = None, clock: Clock | None = None) -> tuple[Monitoring, Clock]:
    clock = clock or Clock()
    return Monitoring(settings(env), clock), clock


def record(m: Monitoring, service: str, ok: int, failed: int = 0, latency_ms: float = 100.0,
           error_type: str = "upstream_5xx") -> None:
    """``ok`` successful and ``failed`` failed calls of ``service`` (``provider.operation``) now."""
    for _ in range(ok):
        m.record_request(service, True, latency_ms)
    for _ in range(failed):
        m.record_request(service, False, latency_ms, error_type)
