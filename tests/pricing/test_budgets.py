"""Budgets in one process (no Redis): the UTC periods, refusal once a budget is spent with
``Retry-After`` until its period ends, a new day starting afresh, budgets only reported, and at
most ``max_in_flight`` of a client's calls admitted at once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from app.calls import ErrorType, GatewayError
from app.config import ClientBudget
from app.resilience.budgets import Budgets, Periods

pytestmark = pytest.mark.unit


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def test_periods_are_utc_days_and_months_and_say_when_they_end() -> None:
    end_of_year = Periods.at(at("2026-12-31T23:00:00"))
    assert (end_of_year.day, end_of_year.month) == ("2026-12-31", "2026-12")
    assert end_of_year.day_left == end_of_year.month_left == 3600
    mid_month = Periods.at(at("2026-11-15T12:00:00"))
    assert mid_month.day_left == 12 * 3600 and mid_month.month_left == 15.5 * 86400


async def test_a_spent_daily_budget_refuses_until_the_day_ends() -> None:
    now = [at("2026-12-07T22:00:00")]
    budgets = Budgets({"team-a": ClientBudget("team-a", daily_usd=1.0, enforce=True)}, clock=lambda: now[0])
    slot = await budgets.admit("team-a")
    await budgets.settle("team-a", 0.6, slot)
    await budgets.settle("team-a", 0.5, await budgets.admit("team-a"))  # admitted at 0.6: may overspend once
    with pytest.raises(GatewayError) as refused:
        await budgets.admit("team-a")
    assert refused.value.error_type is ErrorType.BUDGET_EXCEEDED and refused.value.status == 429
    assert refused.value.retry_after == 2 * 3600
    assert "1.100000 USD of its daily budget of 1 USD" in refused.value.detail
    assert await budgets.admit("someone-else") is None  # no budget: never refused
    now[0] = at("2026-12-08T00:00:01")
    assert await budgets.admit("team-a") is not None


async def test_a_monthly_budget_counts_every_day_of_the_month_and_a_reported_one_never_refuses() -> None:
    now = [at("2026-12-01T10:00:00")]
    budgets = Budgets({"team-a": ClientBudget("team-a", monthly_usd=2.0, enforce=True),
                       "ivr": ClientBudget("ivr", monthly_usd=0.1)}, clock=lambda: now[0])
    for day in ("01", "02"):
        now[0] = at(f"2026-12-{day}T10:00:00")
        await budgets.settle("team-a", 1.0, await budgets.admit("team-a"))
        await budgets.settle("ivr", 1.0, await budgets.admit("ivr"))
    with pytest.raises(GatewayError, match="monthly budget"):
        await budgets.admit("team-a")
    assert await budgets.admit("ivr") is None
    assert await budgets.spent("ivr", Periods.at(now[0])) == (1.0, 2.0)


async def test_an_enforced_client_has_at_most_max_in_flight_calls_admitted() -> None:
    budgets = Budgets({"team-a": ClientBudget("team-a", daily_usd=100.0, enforce=True, max_in_flight=2)})
    first, second = await budgets.admit("team-a"), await budgets.admit("team-a")
    third = asyncio.ensure_future(budgets.admit("team-a"))
    await asyncio.sleep(0.01)
    assert not third.done()
    await budgets.settle("team-a", 0.1, first)
    assert await asyncio.wait_for(third, 1) is not None
    assert second is not None
