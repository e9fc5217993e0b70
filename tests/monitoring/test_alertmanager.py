"""In-app alerts reach a real Alertmanager, firing and then resolved, through its webhook."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from app.monitoring import Monitoring
from app.stack.processes import Daemon, alertmanager_command

from ..support import Clock, free_port, wait_until_async
from .helpers import record, settings

pytestmark = pytest.mark.stack



class Webhook:
    """A webhook receiver: collects Alertmanager's notifications."""

    def __init__(self) -> None:
        self.notifications: list[dict[str, Any]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.notifications.append(await request.json())
        return web.Response(text="ok")

    async def next(self, status: str, alertname: str = "ProviderSuccessRateLow", timeout: float = 15
                   ) -> dict[str, Any]:
        """The first notification with ``status`` (``firing`` or ``resolved``) about ``alertname``."""
        return await wait_until_async(
            lambda: next((n for n in self.notifications if n["status"] == status
                          and n["alerts"][0]["labels"]["alertname"] == alertname), None), timeout,
            lambda: f"a {status} notification of {alertname}; got {self.notifications}")


async def fired_severities(hook: Webhook, count: int, timeout: float = 15) -> set[str]:
    """The severities of the firing notifications, once ``count`` of them arrived (one per group)."""
    def found() -> set[str] | None:
        firing = [n for n in hook.notifications if n["status"] == "firing"]
        severities = {n["alerts"][0]["labels"]["severity"] for n in firing}
        return severities if len(severities) >= count else None

    return await wait_until_async(found, timeout,
                                  lambda: f"{count} firing severities; got {hook.notifications}")


@pytest.fixture
async def webhook() -> AsyncIterator[tuple[Webhook, int]]:
    hook = Webhook()
    app = web.Application()
    app.router.add_post("/hook", hook.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield hook, port
    await runner.cleanup()


@contextlib.contextmanager
def alertmanager(tmp_path: Path, webhook_port: int, port: int | None = None) -> Iterator[str]:
    """A real Alertmanager routing everything to the webhook at once, re-notifying rarely."""
    config = tmp_path / "alertmanager.yml"
    config.write_text(json.dumps({
        "route": {"receiver": "test", "group_by": ["alertname", "provider", "operation", "severity"],
                  "group_wait": "100ms", "group_interval": "500ms", "repeat_interval": "1h"},
        "receivers": [{"name": "test", "webhook_configs": [
            {"url": f"http://127.0.0.1:{webhook_port}/hook", "send_resolved": True}]}],
    }))
    port = port or free_port()
    daemon = Daemon("alertmanager", alertmanager_command(config, tmp_path / "data", f"127.0.0.1:{port}"),
                    f"http://127.0.0.1:{port}", tmp_path / "alertmanager.log", "/-/ready")
    try:
        daemon.wait_ready(15)
        yield daemon.url
    finally:
        daemon.stop()


def immediate(url: str) -> tuple[Monitoring, Clock]:
    base = settings({"ALERTMANAGER_URL": url})
    clock = Clock(time.time())  # Alertmanager judges startsAt and endsAt by its own clock
    return Monitoring(dataclasses.replace(base, alerts=dataclasses.replace(base.alerts, for_=0.0)), clock), clock


async def test_firing_then_resolved_alerts_reach_alertmanager(
    tmp_path: Path, webhook: tuple[Webhook, int]
) -> None:
    hook, hook_port = webhook
    with alertmanager(tmp_path, hook_port) as url:
        m, clock = immediate(url)
        record(m, "sarvam.translate", ok=0, failed=10)
        assert {(a.name, a.severity, a.state) for a in m.evaluate()} == {
            (name, severity, "firing") for name in ("ProviderSuccessRateLow", "ProviderErrorBudgetBurn")
            for severity in ("warning", "critical")}
        firing = await hook.next("firing")
        [alert] = firing["alerts"]
        assert alert["labels"]["alertname"] == "ProviderSuccessRateLow"
        assert {k: alert["labels"][k] for k in ("provider", "operation")} == {"provider": "sarvam",
                                                                            "operation": "translate"}
        assert alert["annotations"]["description"].startswith("sarvam.translate: 0% of attempted calls")
        assert alert["annotations"]["runbook_url"] == "alerts/RUNBOOK.md#providersuccessratelow"
        assert alert["annotations"]["summary"] in ("Provider success rate below 95%", "Provider success rate below 80%")
        severities = await fired_severities(hook, 2)
        burn = (await hook.next("firing", "ProviderErrorBudgetBurn"))["alerts"][0]
        assert burn["annotations"]["budget_left"] == "-1.99e+04% of the 30d availability error budget left"
        record(m, "sarvam.translate", ok=1000)
        clock.now = time.time()
        # 10 failures in 1010 calls: still 2x the budget over every window, a ticket (1x over 3d and 6h).
        assert [(a.name, a.severity) for a in m.evaluate()] == [("ProviderErrorBudgetBurn", "warning")]
        resolved = await hook.next("resolved")
        assert resolved["alerts"][0]["status"] == "resolved"
        assert resolved["alerts"][0]["labels"]["severity"] in severities
        await m.stop()


async def test_failed_deliveries_are_retried_at_the_next_evaluation(
    tmp_path: Path, webhook: tuple[Webhook, int]
) -> None:
    hook, hook_port = webhook
    port = free_port()
    m, clock = immediate(f"http://127.0.0.1:{port}")
    record(m, "deepgram.stt", ok=0, failed=10)
    m.evaluator.evaluate(clock.now)
    assert await m.deliver() == 0  # refused: Alertmanager is not up yet
    with alertmanager(tmp_path, hook_port, port):
        clock.now = time.time()
        m.evaluator.evaluate(clock.now)
        assert await m.deliver() == 4  # ProviderSuccessRateLow and ProviderErrorBudgetBurn, both severities
        firing = await hook.next("firing")
        assert firing["alerts"][0]["labels"]["provider"] == "deepgram"
        clock.advance(1)
        assert await m.deliver() == 0  # delivered: not again before the resend delay
        clock.advance(60)
        assert await m.deliver() == 4  # re-sent, as Prometheus does, so Alertmanager keeps them
        await m.stop()
