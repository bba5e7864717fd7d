"""Rates ("100/minute") and what a rate limiter decides about one request."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from servewell.errors import InvalidInput

_PERIODS_S = {"second": 1.0, "minute": 60.0, "hour": 3600.0, "day": 86400.0}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*(second|minute|hour|day)s?\s*$")


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
        if not match or int(match[1]) < 1:
            raise InvalidInput(
                f"rate '{text}' is not like 100/minute (a positive count per second, "
                "minute, hour or day)"
            )
        multiple = int(match[2]) if match[2] else 1
        return cls(limit=int(match[1]), period_s=multiple * _PERIODS_S[match[3]])

    @property
    def refill_per_s(self) -> float:
        return self.limit / self.period_s

    def __str__(self) -> str:
        for unit, seconds in _PERIODS_S.items():
            if self.period_s == seconds:
                return f"{self.limit}/{unit}"
        return f"{self.limit}/{self.period_s:g}second"


@dataclass(frozen=True, slots=True)
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
