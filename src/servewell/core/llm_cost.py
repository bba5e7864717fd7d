"""What an LLM call costs, and the spending budgets of API keys: pure arithmetic.

A call's cost is ``prompt_tokens / 1000 x input_per_1k + completion_tokens / 1000 x
output_per_1k`` (USD), the prices coming from the remote model's spec (a local model
costs 0 unless ``llm_costs.prices`` names it). A key's budget reads ``"10/day"`` or
``"250/month"`` (USD per calendar day or month, UTC): :class:`SpendBudget` says when the
period being spent began and when it resets.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal

from servewell.errors import InvalidInput

Period = Literal["day", "month"]
_BUDGET = re.compile(r"^\s*\$?\s*(\d+(?:\.\d{1,6})?)\s*/\s*(day|month)\s*$")
#: The largest budget one key may have, in USD per period.
MAX_BUDGET_USD = 1_000_000_000.0


@dataclass(frozen=True, slots=True)
class Prices:
    """USD per 1000 tokens."""

    input_per_1k: float = 0.0
    output_per_1k: float = 0.0


FREE = Prices()


@dataclass(frozen=True, slots=True)
class Usage:
    """The tokens of one call: what the upstream's ``usage`` said, or a local count."""

    prompt_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def to_dict(self) -> dict[str, int]:
        """As OpenAI's ``usage`` states it."""
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }


def cost_usd(usage: Usage, prices: Prices) -> float:
    """What ``usage`` costs at ``prices``."""
    return (
        usage.prompt_tokens / 1000 * prices.input_per_1k
        + usage.completion_tokens / 1000 * prices.output_per_1k
    )


@dataclass(frozen=True, slots=True)
class SpendBudget:
    """``amount_usd`` per calendar ``period`` (UTC) for one key."""

    amount_usd: float
    period: Period

    @classmethod
    def parse(cls, text: str) -> SpendBudget:
        """``"10/day"``, ``"250/month"``, ``"0.5/day"`` (USD; a leading ``$`` is allowed)."""
        match = _BUDGET.match(text.lower())
        if not match:
            shown = repr(text) if len(text) <= 40 else repr(text[:37] + "...")
            raise InvalidInput(
                f"budget {shown} is not like 10/day (US dollars per day or per month)"
            )
        amount = float(match[1])
        if not 0 < amount <= MAX_BUDGET_USD:
            raise InvalidInput(
                f"budget {text!r}: the amount must be above 0 and at most {MAX_BUDGET_USD:,.0f}"
            )
        period: Period = "day" if match[2] == "day" else "month"
        return cls(amount, period)

    def __str__(self) -> str:
        """The form :meth:`parse` reads back: ``"10/day"``, ``"0.5/month"``."""
        return f"{self.amount_usd:g}/{self.period}"

    def starts(self, now: datetime) -> date:
        """The first day of the period ``now`` (UTC) falls in."""
        today = now.astimezone(UTC).date()
        return today if self.period == "day" else today.replace(day=1)

    def resets_at(self, now: datetime) -> datetime:
        """When the period ``now`` falls in ends (midnight UTC)."""
        start = self.starts(now)
        if self.period == "day":
            end = start + timedelta(days=1)
        else:
            end = (start.replace(day=28) + timedelta(days=4)).replace(day=1)
        return datetime(end.year, end.month, end.day, tzinfo=UTC)


def day_of(now: datetime) -> str:
    """The UTC day ``now`` falls in, as spend rows name it: ``"2026-12-01"``."""
    return now.astimezone(UTC).date().isoformat()
