"""Regression metrics computed from predictions, defined as scikit-learn defines them."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

Array = np.ndarray[Any, Any]


@dataclass(frozen=True, slots=True)
class RegressionMetrics:
    """Errors of numeric predictions."""

    mae: float
    rmse: float
    r2: float
    rows: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def headline(self) -> dict[str, float]:
        return {"mae": self.mae, "rmse": self.rmse, "r2": self.r2}


def regression_metrics(y_true: Array, y_pred: Array) -> RegressionMetrics:
    """MAE, RMSE and R² (1.0 for a perfect fit of a constant target, 0.0 otherwise)."""
    truth = np.asarray(y_true, dtype=np.float64).reshape(-1)
    guess = np.asarray(y_pred, dtype=np.float64).reshape(-1)
    if len(truth) == 0:
        raise ValueError("no rows to score")
    if len(truth) != len(guess):
        raise ValueError(f"{len(truth)} true values but {len(guess)} predictions")
    errors = truth - guess
    residual = float(np.sum(errors**2))
    total = float(np.sum((truth - truth.mean()) ** 2))
    r2 = 1.0 - residual / total if total else float(residual == 0.0)
    return RegressionMetrics(
        mae=float(np.mean(np.abs(errors))),
        rmse=float(np.sqrt(np.mean(errors**2))),
        r2=r2,
        rows=len(truth),
    )
