"""Which logged rows a report covers, and how they split into slices over time.

A time window (``1h``, ``1d``) is the rows logged in the last so many seconds, cut into
:data:`SLICES` equal spans; a window of rows (``1000``) is the newest so many, cut into
:data:`SLICES` runs of equal length. The plots over time are drawn per slice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from servewell.errors import InvalidInput
from servewell.settings.monitoring import Window, parse_window

#: Slices a window is cut into for the figures over time.
SLICES = 12


@dataclass(frozen=True, slots=True)
class Span:
    """A window as of ``end``: where it starts and how a row finds its slice."""

    window: Window
    end: datetime
    slices: int = SLICES

    @classmethod
    def parse(cls, text: str, end: datetime | None = None) -> Span:
        """``--window``'s text; a bad one is :class:`InvalidInput` naming it."""
        try:
            window = parse_window(text)
        except ValueError as exc:
            raise InvalidInput(f"--window: {exc}") from None
        return cls(window, end or datetime.now(UTC))

    @property
    def start(self) -> datetime | None:
        """The first moment a time window holds (None for a window of rows)."""
        if self.window.seconds is None:
            return None
        return self.end - timedelta(seconds=self.window.seconds)

    @property
    def newest(self) -> int | None:
        return self.window.rows

    def slice_of(self, logged_at: float, position: int) -> int:
        """The slice of the ``position``-th row of the window, logged at ``logged_at``."""
        if self.window.rows is not None:
            return min(position // math.ceil(self.window.rows / self.slices), self.slices - 1)
        assert self.window.seconds is not None
        offset = logged_at - self.end.timestamp() + self.window.seconds
        return max(0, min(int(offset / (self.window.seconds / self.slices)), self.slices - 1))
