"""A mergeable quantile sketch of positive numbers (latencies) with a bounded relative
error, on fixed logarithmic bins (DDSketch's mapping: Masson, Rim and Lee, VLDB 2019).

Bin ``i`` holds the values in ``(GAMMA**(i-1), GAMMA**i]`` times :data:`LOWEST`; values
at or below :data:`LOWEST` share bin 0 and values above the last bin's top the last
one. Every sketch has the same bins, so sketches from any bucket or replica merge by
adding counts, and a quantile read from one is within :data:`RELATIVE_ERROR` of the
exact one (``numpy.percentile``'s linear interpolation between the two order statistics
around it, each read at its bin's centre) for values inside the range; the smallest
and largest values are kept exactly, and every figure is clamped between them.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

Array = np.ndarray[Any, Any]

#: Relative accuracy of a quantile (for values between LOWEST and HIGHEST).
RELATIVE_ERROR = 0.005
GAMMA = (1 + RELATIVE_ERROR) / (1 - RELATIVE_ERROR)
#: The range with a relative error bound, in the values' unit (milliseconds).
LOWEST, HIGHEST = 1e-3, 1e7
BINS = math.ceil(math.log(HIGHEST / LOWEST) / math.log(GAMMA)) + 1
#: Names the bins (a packed sketch on other bins is refused).
LAYOUT = f"log-{RELATIVE_ERROR}-{LOWEST:g}-{HIGHEST:g}"


class QuantileSketch:
    """Counts of values per logarithmic bin, with the exact minimum and maximum."""

    __slots__ = ("counts", "high", "low")

    def __init__(
        self, counts: Array | None = None, low: float = math.inf, high: float = -math.inf
    ) -> None:
        self.counts = np.zeros(BINS, np.int64) if counts is None else np.asarray(counts, np.int64)
        self.low = low
        self.high = high

    @property
    def rows(self) -> int:
        return int(self.counts.sum())

    def update(self, values: Any) -> None:
        """Add ``values`` (NaN left out), in one vectorised pass."""
        numbers = np.asarray(values, dtype=np.float64).reshape(-1)
        numbers = numbers[~np.isnan(numbers)]
        if not len(numbers):
            return
        self.counts += np.bincount(bin_of(numbers), minlength=BINS)
        self.low = min(self.low, float(numbers.min()))
        self.high = max(self.high, float(numbers.max()))

    def merge(self, other: QuantileSketch) -> QuantileSketch:
        return QuantileSketch(
            self.counts + other.counts, min(self.low, other.low), max(self.high, other.high)
        )

    def percentiles(self, percents: list[float]) -> list[float]:
        """As ``numpy.percentile(values, percents)`` (linear), to the relative error."""
        total = self.rows
        if not total:
            return [math.nan for _ in percents]
        cumulative = np.cumsum(self.counts)
        found = []
        for percent in percents:
            rank = percent / 100 * (total - 1)
            below, above = math.floor(rank), math.ceil(rank)
            low, high = (self._nth(cumulative, n) for n in (below, above))
            found.append(low + (rank - below) * (high - low))
        return found

    def _nth(self, cumulative: Array, n: int) -> float:
        """The ``n``-th smallest value (from 0), at its bin's centre, within low..high
        (the smallest and the largest exact)."""
        if n <= 0:
            return self.low
        if n >= int(cumulative[-1]) - 1:
            return self.high
        index = int(np.searchsorted(cumulative, n, side="right"))
        value = LOWEST * 2 * GAMMA**index / (GAMMA + 1)
        return float(min(max(value, self.low), self.high))


def bin_of(values: Array) -> Array:
    """Each positive value's bin (0 for values at or below LOWEST)."""
    scaled = np.maximum(values, LOWEST) / LOWEST
    index = np.ceil(np.log(scaled) / math.log(GAMMA)).astype(np.int64)
    return np.clip(index, 0, BINS - 1)
