"""``ProviderBudgetBurn`` in-app: the recorder's buckets carry each priced call's cost, and the
evaluator raises the rule's alerts from them (the promtool cases of alerts/tests/spend_budget.yml
are replayed through the same evaluator by tests/stack/test_parity.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.calls import CallContext, CallEvent, CallSpec, ErrorType
from app.monitoring import Monitoring
from app.monitoring.buckets import Bucket
from app.monitoring.fleet_wire import bucket_updates, copy, decode
from app.monitoring.stats import Key
from tests.support import Clock

from .helpers import settings

BUDGETS = {"OPENAI_BUDGET_DAILY_USD": "10", "OPENAI_BUDGET_MONTHLY_USD": "100"}


def call(m: Monitoring, provider: str, cost: float | None, ok: bool = True) -> None:
    spec = CallSpec(provider, "chat")
    context = CallContext(spec)
    context.cost_usd = cost
    event = CallEvent(spec, "success" if ok else "error", None if ok else ErrorType.UPSTREAM_5XX, 0.1, context)
    m.observer.on_call(event)
    m.usage.on_call(event)  # as the gateway's pipeline tells both


def budget_alerts(m: Monitoring) -> dict[tuple[str, str], float]:
    return {(a.labels["provider"], a.severity): a.value for a in m.evaluate() if a.name == "ProviderBudgetBurn"}


def test_spend_raises_the_warning_and_the_page_only_while_the_windows_hold_it() -> None:
    clock = Clock()
    m = Monitoring(settings(BUDGETS), clock)
    for _ in range(24):  # two hours at 0.01 USD per 5 minutes: 2.88 USD a day at that rate, 29%
        for _ in range(10):
            call(m, "openai", 0.001)
        call(m, "openai", None)  # unpriced: counted, never as cost
        call(m, "openai", 5.0, ok=False)  # a failed call is not billed, whatever its context says
        call(m, "sarvam", 5.0)  # no budget, no alert
        clock.advance(300)
    assert budget_alerts(m) == {}

    for _ in range(120):  # a runaway: 12 USD at once
        call(m, "openai", 0.1)
    alerts = budget_alerts(m)
    assert set(alerts) == {("openai", "critical"), ("openai", "warning")}
    assert alerts[("openai", "critical")] == pytest.approx((0.24 + 12) / 10)  # the day's spend, 122%
    assert alerts[("openai", "warning")] > 24  # the hour's rate kept for a day: over 2400%

    clock.advance(7200)  # the hour is clean; the day still holds the runaway
    alerts = budget_alerts(m)
    assert set(alerts) == {("openai", "critical"), ("openai", "warning")}
    # The hour's rate is 0 now: the warning holds by the monthly budget, the day's rate for 30 days.
    assert alerts[("openai", "warning")] == pytest.approx(12.24 / 86400 * 30 * 86400 / 100)

    clock.advance(86400)
    assert budget_alerts(m) == {}


def test_without_a_budget_there_is_no_rule() -> None:
    clock = Clock()
    m = Monitoring(settings(), clock)
    assert all(rule.name != "ProviderBudgetBurn" for rule in m.rules)
    call(m, "openai", 1000.0)
    assert budget_alerts(m) == {}
    m = Monitoring(settings({"DEEPGRAM_BUDGET_MONTHLY_USD": "30"}), clock)
    assert [(r.name, r.severity) for r in m.rules if r.name == "ProviderBudgetBurn"] == [
        ("ProviderBudgetBurn", "critical"), ("ProviderBudgetBurn", "warning")]  # the month's page, the rate's warning


def test_the_calendar_month_pages_until_it_ends() -> None:
    """The monthly budget's page reads the spend this UTC month, not a window: it holds after the
    rolling windows have let the spend go, until the month ends."""
    month_end = datetime(2023, 12, 1, tzinfo=UTC).timestamp()
    clock = Clock(month_end - 5 * 86400)
    m = Monitoring(settings({"DEEPGRAM_BUDGET_MONTHLY_USD": "30"}), clock)
    for _ in range(29):
        call(m, "deepgram", 1.0)
    assert ("deepgram", "critical") not in budget_alerts(m)  # 29 of 30: the rate warns, the month holds
    clock.advance(3 * 86400)
    assert budget_alerts(m) == {}  # the day's rate let the burst go
    call(m, "deepgram", 1.5)
    call(m, "deepgram", None)  # unpriced: never counted as cost
    assert budget_alerts(m)[("deepgram", "critical")] == pytest.approx(30.5 / 30)
    assert m.spend_to_date() == {("deepgram", "day"): 1.5, ("deepgram", "month"): 30.5}
    clock.advance(86400 + 3600)  # the day's rate no longer holds the 1.5: still 30.5 this month
    assert budget_alerts(m) == {("deepgram", "critical"): pytest.approx(30.5 / 30)}
    clock.advance(86400)  # a new month
    assert budget_alerts(m) == {}
    assert m.spend_to_date() == {}


def test_the_fleet_wire_carries_the_cost() -> None:
    sent = Bucket(7)
    sent.cost = 0.25
    now = copy(sent)
    now.cost += 1.5
    assert copy(now).cost == 1.75
    updates = bucket_updates("openai.chat", now, sent)
    assert updates == ["f", "openai.chat|c", repr(1.5)]
    merged: dict[Key, Bucket] = {}
    decode(7, "openai.chat|c", "1.75", merged, {}, {})
    assert merged[("openai", "chat")].cost == 1.75
