"""Whether a conversion computes what the estimator computes, on sample rows.

A classifier's conversion must give the same label on at least 99.5 % of the rows and
probabilities within 0.001 of the original's; a regressor's values must lie within
0.1 % of the target's scale (the standard deviation of the true values when the caller
knows them, else of the original's predictions). Rounding the inputs or a tree's
thresholds to float32 moves a few rows across a split, which on a regressor's scale can
be several units: the bound is relative so it means the same for prices and for rates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

Array = np.ndarray[Any, Any]

#: Least share of sample rows on which a classifier's conversion gives the same label.
MIN_LABEL_AGREEMENT = 0.995
#: Largest probability difference of a faithful classifier conversion.
MAX_PROBABILITY_DIFF = 1e-3
#: Largest difference of a faithful regressor conversion, as a share of the target's scale.
MAX_RELATIVE_DIFF = 1e-3


@dataclass(frozen=True, slots=True)
class Agreement:
    """How a conversion's outputs compare with the original's on some rows."""

    rows: int
    compared: str
    """The output compared value by value: ``probabilities``, ``label`` or ``variable``."""
    max_abs_diff: float
    tolerance: float
    label_agreement: float | None = None
    """Share of rows with the same label (classifiers only)."""

    @property
    def faithful(self) -> bool:
        labels_agree = self.label_agreement is None or self.label_agreement >= MIN_LABEL_AGREEMENT
        return labels_agree and self.max_abs_diff <= self.tolerance

    def describe(self) -> str:
        """What differs, in a phrase: ``gives other labels on 1.2% of 300 rows``."""
        parts = []
        if self.label_agreement is not None and self.label_agreement < MIN_LABEL_AGREEMENT:
            parts.append(
                f"gives other labels on {1 - self.label_agreement:.1%} of {self.rows} rows"
            )
        if self.max_abs_diff > self.tolerance:
            parts.append(
                f"differs by up to {self.max_abs_diff:.4g} in '{self.compared}' on {self.rows} "
                f"rows (at most {self.tolerance:.3g} allowed)"
            )
        return " and ".join(parts) or f"agrees on {self.rows} rows"


def compare_outputs(
    original: dict[str, Array], converted: dict[str, Array], target_scale: float | None = None
) -> Agreement:
    """Compare a conversion's outputs with the original's (same rows, same names)."""
    rows = len(next(iter(original.values())))
    if "label" in original:
        agreement = float(np.mean(converted["label"] == original["label"]))
        # A signature may declare the label alone; then the labels are all there is.
        both = "probabilities" in original and "probabilities" in converted
        compared = "probabilities" if both else "label"
        tolerance = MAX_PROBABILITY_DIFF if both else np.inf
        diff = _max_abs_diff(original, converted, compared) if both else 0.0
        return Agreement(rows, compared, diff, tolerance, agreement)
    values = np.asarray(original["variable"], dtype=np.float64)
    scale = target_scale if target_scale is not None else float(np.std(values))
    scale = scale if np.isfinite(scale) and scale > 0 else max(float(np.max(np.abs(values))), 1.0)
    diff = _max_abs_diff(original, converted, "variable")
    return Agreement(rows, "variable", diff, MAX_RELATIVE_DIFF * scale)


def _max_abs_diff(original: dict[str, Array], converted: dict[str, Array], name: str) -> float:
    a = np.asarray(original[name], dtype=np.float64)
    b = np.asarray(converted[name], dtype=np.float64).reshape(a.shape)
    if a.size == 0:
        return 0.0
    both_nan = np.isnan(a) & np.isnan(b)
    return float(np.max(np.where(both_nan, 0.0, np.abs(a - b))))
