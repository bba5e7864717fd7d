"""Bin edges from quantiles, with every frequent value in a bin of its own.

Bins are left-closed and open at both ends: ``k`` edges make ``k + 1`` bins,
``(-inf, e0), [e0, e1), ..., [e(k-1), +inf)``, so ``np.searchsorted(edges, x,
side="right")`` is a value's bin and a value below or above everything the edges were
drawn from still has one.
"""

from __future__ import annotations

from typing import Any

import numpy as np

Array = np.ndarray[Any, Any]


def bin_edges(values: Array, bins: int) -> Array:
    """Quantile edges of ``values``, plus an edge either side of every value frequent
    enough to fill a bin alone, so no two distinct frequent values share a bin."""
    if len(values) == 0:
        return np.zeros(0)
    distinct, counts = np.unique(values, return_counts=True)
    frequent = distinct[counts >= len(values) / bins] if len(distinct) > bins else distinct
    quantiles = np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1])
    return np.unique(np.concatenate([quantiles, frequent, np.nextafter(frequent, np.inf)]))


def bin_of(edges: Array, values: Array) -> Array:
    """Each value's bin number (0 to ``len(edges)``) for left-closed, open-ended bins."""
    return np.searchsorted(edges, values, side="right")
