"""A request's deadline: when the answer must be ready, on the event loop's clock.

Made once per request (the model's ``timeout_ms``, or less when the caller's
``Request-Timeout`` header asks for less) and handed down the predict path, so that
every step (the queue, a retry's backoff, a fallback) spends the same budget.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass

from servewell.errors import InvalidInput


@dataclass(frozen=True, slots=True)
class Deadline:
    at: float
    """``time.monotonic()`` (the clock ``loop.time()`` and ``loop.call_at`` use) by which
    the answer is due."""
    timeout_ms: float
    """The budget it was made with, for the 504's message."""

    @classmethod
    def after_ms(cls, timeout_ms: float) -> Deadline:
        return cls(time.monotonic() + timeout_ms / 1000, timeout_ms)

    def remaining_s(self) -> float:
        """Seconds left (negative once passed)."""
        return self.at - time.monotonic()

    @property
    def expired(self) -> bool:
        return time.monotonic() >= self.at


#: A header's milliseconds as HTTP spells numbers: digits, maybe a fraction; not what
#: else Python's ``float()`` takes (``1_000``, ``+5``, `` 5 ``, ``1e3``, ``inf``).
_MILLISECONDS = re.compile(rb"[0-9]{1,15}(\.[0-9]{1,9})?")


def requested_timeout_ms(value: bytes) -> float:
    """A ``Request-Timeout`` header's milliseconds: a positive number, or InvalidInput
    naming the header."""
    timeout_ms = float(value) if _MILLISECONDS.fullmatch(value) else math.nan
    if not (0 < timeout_ms < math.inf):
        shown = value[:40].decode("ascii", "backslashreplace")
        raise InvalidInput(
            f"the Request-Timeout header is a positive number of milliseconds, not {shown!r}"
        )
    return timeout_ms


def requested_deadline(value: bytes | None) -> Deadline | None:
    """The caller's own deadline, from now, when it sent a ``Request-Timeout`` header (a
    malformed one is InvalidInput)."""
    return None if value is None else Deadline.after_ms(requested_timeout_ms(value))


def deadline_for(requested: Deadline | None, timeout_ms: float) -> Deadline:
    """A deadline from now: ``timeout_ms`` (a model's), or the caller's ``requested``
    deadline when that comes sooner."""
    own = Deadline.after_ms(timeout_ms)
    return own if requested is None or own.at <= requested.at else requested
