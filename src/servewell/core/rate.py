"""Rates ("100/minute") and what a rate limiter decides about one request."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from servewell.errors import InvalidInput

_PERIODS_S = {"second": 1.0, "minute": 60.0, "hour": 3600.0, "day": 86400.0}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*(second|minute|hour|day)s?\s*$")
MAX_COUNT = 1_000_000_000
"""Most requests one rate may allow per period."""
MAX_MULTIPLE = 1_000_000
"""Most units in one period ("10/5minutes" has 5)."""


@dataclass(frozen=True, slots=True)
class Rate:
    """``limit`` requests per ``period_s``, as a token bucket: bursts up to ``limit``,
    refilled evenly over the period."""

    limit: int
    period_s: float

    @classmethod
    def parse(cls, text: str) -> Rate:
        """``"100/minute"``, ``"5/second"``, ``"1000/hour"``, ``"10/5minutes"``."""
        match = _RATE.match(text.lower())
        if not match:
            raise InvalidInput(
                f"rate {_preview(text)} is not like 100/minute (a count per second, "
                "minute, hour or day, or per several of them: 10/5minutes)"
            )
        count = _bounded(match[1], MAX_COUNT)
        if count is None:
            raise InvalidInput(
                f"rate {_preview(text)}: the count must be from 1 to {MAX_COUNT} per period"
            )
        multiple = _bounded(match[2], MAX_MULTIPLE) if match[2] else 1
        if multiple is None:
            raise InvalidInput(
                f"rate {_preview(text)}: the period must be from 1 to {MAX_MULTIPLE} {match[3]}s"
            )
        return cls(limit=count, period_s=multiple * _PERIODS_S[match[3]])

    @property
    def refill_per_s(self) -> float:
        return self.limit / self.period_s

    def __str__(self) -> str:
        """The form :meth:`parse` reads back: ``"100/minute"``, ``"1/12days"``."""
        for unit, seconds in reversed(_PERIODS_S.items()):
            multiple = self.period_s / seconds
            if multiple == 1:
                return f"{self.limit}/{unit}"
            if multiple.is_integer() and multiple > 1:
                return f"{self.limit}/{multiple:.0f}{unit}s"
        return f"{self.limit}/{self.period_s:g}second"


def _bounded(digits: str, most: int) -> int | None:
    """The number ``digits`` spells, or None when it is 0 or above ``most`` (checked on
    the text first, so a thousand digits are never turned into an int)."""
    digits = digits.lstrip("0")
    if not digits or len(digits) > len(str(most)) or int(digits) > most:
        return None
    return int(digits)


def _preview(text: str) -> str:
    return repr(text) if len(text) <= 40 else repr(text[:37] + "...")


@dataclass(slots=True)  # not frozen: built on every request, and frozen init costs ~3x
class Decision:
    """The answer for one request, with what the RateLimit-* headers report."""

    allowed: bool
    limit: int
    remaining: int
    reset_s: float
    """Seconds until the bucket is full again."""
    retry_after_s: float
    """Seconds until one more request would be allowed (0 when allowed)."""
    degraded: bool = False
    """The shared backend was unreachable and the failure policy decided."""

    def headers(self) -> dict[str, str]:
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(math.ceil(self.reset_s)),
        }


def decide(rate: Rate, tokens_after: float, allowed: bool, cost: float = 1.0) -> Decision:
    """A decision from a bucket's state after the request (shared by every backend)."""
    refill = rate.refill_per_s
    return Decision(
        allowed=allowed,
        limit=rate.limit,
        remaining=max(0, math.floor(tokens_after)),
        reset_s=max(0.0, (rate.limit - tokens_after) / refill),
        retry_after_s=0.0 if allowed else max(0.0, (cost - tokens_after) / refill),
    )
