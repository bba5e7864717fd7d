"""How far a score measured on a sample may stray by chance: standard errors of a share
(accuracy, a recall) and of a ROC-AUC (Hanley and McNeil, 1982)."""

from __future__ import annotations

import math
from collections.abc import Sequence


def share_error(share: float, rows: int) -> float:
    """The standard error of a share measured on ``rows`` rows (binomial)."""
    if rows <= 0:
        return math.inf
    return math.sqrt(max(share * (1 - share), 0.0) / rows)


def mean_share_error(shares: Sequence[float], rows: Sequence[int]) -> float:
    """The standard error of the mean of independent shares (a balanced accuracy)."""
    if not shares:
        return math.inf
    variance = sum(share_error(s, n) ** 2 for s, n in zip(shares, rows, strict=True))
    return math.sqrt(variance) / len(shares)


def auc_error(auc: float, positives: int, negatives: int) -> float:
    """The standard error of a ROC-AUC measured on ``positives`` and ``negatives`` rows."""
    if positives <= 0 or negatives <= 0:
        return math.inf
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    variance = (
        auc * (1 - auc) + (positives - 1) * (q1 - auc**2) + (negatives - 1) * (q2 - auc**2)
    ) / (positives * negatives)
    return math.sqrt(max(variance, 0.0))
