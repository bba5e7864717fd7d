"""A call's cost from its tokens and prices; a key's budget and its period."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from servewell.core.llm_cost import FREE, Prices, SpendBudget, Usage, cost_usd, day_of
from servewell.errors import InvalidInput


def test_cost_is_tokens_times_prices_per_thousand() -> None:
    prices = Prices(input_per_1k=0.5, output_per_1k=1.5)
    assert cost_usd(Usage(2000, 1000), prices) == pytest.approx(2.5)
    assert cost_usd(Usage(1, 0), prices) == pytest.approx(0.0005)
    assert cost_usd(Usage(5000, 5000), FREE) == 0.0
    assert Usage(3, 4).total_tokens == 7


@pytest.mark.parametrize(
    ("text", "amount", "period", "shown"),
    [
        ("10/day", 10.0, "day", "10/day"),
        ("$250 / month", 250.0, "month", "250/month"),
        ("0.25/DAY", 0.25, "day", "0.25/day"),
    ],
)
def test_budgets_parse(text: str, amount: float, period: str, shown: str) -> None:
    budget = SpendBudget.parse(text)
    assert (budget.amount_usd, budget.period, str(budget)) == (amount, period, shown)
    assert SpendBudget.parse(str(budget)) == budget


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("10", "not like 10/day"),
        ("10/week", "not like 10/day"),
        ("-1/day", "not like 10/day"),
        ("0/day", "above 0"),
        ("9" * 20 + "/day", "at most"),
    ],
)
def test_bad_budgets_are_refused(text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        SpendBudget.parse(text)


def test_periods_start_and_reset_at_midnight_utc() -> None:
    now = datetime(2026, 12, 31, 22, 30, tzinfo=UTC)
    daily, monthly = SpendBudget(10, "day"), SpendBudget(10, "month")
    assert daily.starts(now) == date(2026, 12, 31)
    assert daily.resets_at(now) == datetime(2027, 1, 1, tzinfo=UTC)
    assert monthly.starts(now) == date(2026, 12, 1)
    assert monthly.resets_at(now) == datetime(2027, 1, 1, tzinfo=UTC)
    feb = datetime(2028, 2, 29, 1, tzinfo=UTC)
    assert monthly.resets_at(feb) == datetime(2028, 3, 1, tzinfo=UTC)
    assert day_of(feb) == "2028-02-29"
