"""How well scores rank one class above the rest: ROC and precision-recall curves, their
areas, and one-vs-rest averages over the classes of a multiclass target.

Defined as scikit-learn defines them (``roc_auc_score``, ``average_precision_score``,
``roc_curve(drop_intermediate=False)``, ``precision_recall_curve``); the tests compare.
A class that is absent from the truth, or is the only one present, has no area: it is
left out of an average instead of failing it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

Array = np.ndarray[Any, Any]


@dataclass(frozen=True, slots=True)
class Curve:
    """A curve as two aligned series, ready to plot (ROC: fpr/tpr; PR: recall/precision;
    reliability: mean predicted probability/observed frequency)."""

    x: tuple[float, ...]
    y: tuple[float, ...]


def roc_curve(is_positive: Array, score: Array) -> Curve:
    """False and true positive rates at every distinct score threshold, from (0, 0)."""
    fps, tps = _cumulative_counts(is_positive, score)
    fpr = np.concatenate([[0.0], fps / fps[-1]])
    tpr = np.concatenate([[0.0], tps / tps[-1]])
    return Curve(tuple(fpr.tolist()), tuple(tpr.tolist()))


def precision_recall_curve(is_positive: Array, score: Array) -> Curve:
    """Precision against recall at every distinct threshold, from recall 0 (precision 1)."""
    fps, tps = _cumulative_counts(is_positive, score)
    precision = tps / (tps + fps)
    recall = tps / tps[-1]
    return Curve(
        tuple(np.concatenate([[0.0], recall]).tolist()),
        tuple(np.concatenate([[1.0], precision]).tolist()),
    )


def roc_auc(is_positive: Array, score: Array) -> float | None:
    """Area under the ROC curve; None unless both classes are present."""
    if not _both_present(is_positive):
        return None
    curve = roc_curve(is_positive, score)
    return float(np.trapezoid(curve.y, curve.x))


def average_precision(is_positive: Array, score: Array) -> float | None:
    """Sum over thresholds of (recall gained) x precision: scikit-learn's PR-AUC."""
    if not np.any(is_positive):
        return None
    fps, tps = _cumulative_counts(is_positive, score)
    precision = tps / (tps + fps)
    gained = np.diff(np.concatenate([[0.0], tps])) / tps[-1]
    return float(np.sum(gained * precision))


def one_vs_rest_auc(onehot: Array, proba: Array, *, weighted: bool = False) -> float | None:
    """The mean ROC-AUC of each class against the rest (weighted by support if asked)."""
    return _one_vs_rest(roc_auc, onehot, proba, weighted)


def one_vs_rest_average_precision(onehot: Array, proba: Array) -> float | None:
    """The mean average precision of each class against the rest."""
    return _one_vs_rest(average_precision, onehot, proba, weighted=False)


def _one_vs_rest(measure: Any, onehot: Array, proba: Array, weighted: bool) -> float | None:
    truth = np.asarray(onehot, dtype=bool)
    areas, weights = [], []
    for column in range(truth.shape[1]):
        area = measure(truth[:, column], proba[:, column])
        if area is not None and _both_present(truth[:, column]):
            areas.append(area)
            weights.append(truth[:, column].sum())
    if not areas:
        return None
    return float(np.average(areas, weights=weights if weighted else None))


def _both_present(is_positive: Array) -> bool:
    positives = int(np.sum(is_positive))
    return 0 < positives < len(is_positive)


def _cumulative_counts(is_positive: Array, score: Array) -> tuple[Array, Array]:
    """False and true positives counted above each distinct score, highest first."""
    positive = np.asarray(is_positive, dtype=bool)
    score = np.asarray(score, dtype=np.float64)
    order = np.argsort(score, kind="mergesort")[::-1]
    score, positive = score[order], positive[order]
    last_of_value = np.r_[np.flatnonzero(np.diff(score)), len(score) - 1]
    tps = np.cumsum(positive, dtype=np.float64)[last_of_value]
    fps = (last_of_value + 1) - tps
    return fps, tps
