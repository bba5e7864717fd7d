"""Whether a shadow version's answer agrees with the primary's, row by row.

A classifier (both answers have a ``label`` output) agrees on a row when the labels are
equal; when both also give ``probabilities``, each row's largest difference between
them is measured too. Any other model agrees on a row when every output the primary gave
is within :data:`ABSOLUTE_TOLERANCE` + :data:`RELATIVE_TOLERANCE` x |primary's value|
of the shadow's (NaN agrees with NaN; text and other non-numbers must be equal).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

Array = np.ndarray[Any, Any]

ABSOLUTE_TOLERANCE = 1e-6
RELATIVE_TOLERANCE = 1e-3


class Incomparable(ValueError):
    """The shadow's answer lacks an output the primary gave, or has another shape."""


@dataclass(frozen=True, slots=True)
class RowComparison:
    agree: Array
    """One bool per row: whether the two answers agree on it."""
    probability_diff: Array | None
    """Per row, the largest absolute difference between the two ``probabilities``
    (classifiers giving them only)."""

    @property
    def agreeing(self) -> int:
        return int(np.count_nonzero(self.agree))

    @property
    def disagreeing(self) -> int:
        return len(self.agree) - self.agreeing


def compare_rows(primary: Mapping[str, Array], shadow: Mapping[str, Array]) -> RowComparison:
    """Row by row, whether ``shadow`` (outputs by name) agrees with ``primary``."""
    missing = [name for name in primary if name not in shadow]
    if missing:
        raise Incomparable(f"the shadow gives no output '{missing[0]}'")
    for name, values in primary.items():
        if np.shape(values) != np.shape(shadow[name]):
            raise Incomparable(
                f"output '{name}' is {list(np.shape(values))} from the primary and "
                f"{list(np.shape(shadow[name]))} from the shadow"
            )
    if "label" in primary:
        diff = None
        if "probabilities" in primary:
            diff = _row_max(_abs_diff(primary["probabilities"], shadow["probabilities"]))
        return RowComparison(_rows_equal(primary["label"], shadow["label"]), diff)
    rows = len(next(iter(primary.values()))) if primary else 0
    agree = np.ones(rows, dtype=bool)
    for name, values in primary.items():
        agree &= _rows_close(values, shadow[name])
    return RowComparison(agree, None)


def _rows_close(primary: Array, shadow: Array) -> Array:
    a, b = np.asarray(primary), np.asarray(shadow)
    if not (_is_number(a) and _is_number(b)):
        return _rows_equal(a, b)
    close = np.isclose(
        b.astype(np.float64),
        a.astype(np.float64),
        rtol=RELATIVE_TOLERANCE,
        atol=ABSOLUTE_TOLERANCE,
        equal_nan=True,
    )
    return _row_all(close)


def _rows_equal(primary: Array, shadow: Array) -> Array:
    return _row_all(np.asarray(primary) == np.asarray(shadow))


def _abs_diff(primary: Array, shadow: Array) -> Array:
    a = np.asarray(primary, dtype=np.float64)
    b = np.asarray(shadow, dtype=np.float64)
    return np.where(np.isnan(a) & np.isnan(b), 0.0, np.abs(a - b))


def _row_all(values: Array) -> Array:
    """Per row (first axis), whether every value of it is true."""
    flags: Array = np.asarray(values, dtype=bool)
    every: Array = np.all(_by_row(flags), axis=1)
    return every


def _row_max(values: Array) -> Array:
    """Per row (first axis), its largest value (0 for a row of none)."""
    rows = _by_row(values)
    if rows.shape[1] == 0:
        return np.zeros(len(values))
    largest: Array = rows.max(axis=1)
    return largest


def _by_row(values: Array) -> Array:
    """``values`` as a 2-D array, one row each (``reshape(n, -1)`` fails on no rows)."""
    rows: Array = values.reshape(len(values), int(np.prod(values.shape[1:])))
    return rows


def _is_number(values: Array) -> bool:
    return values.dtype.kind in "biuf"
