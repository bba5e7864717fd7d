"""Whether predicted probabilities mean what they say: the Brier score and a reliability
curve, defined as scikit-learn's ``brier_score_loss`` and ``calibration_curve`` are."""

from __future__ import annotations

from typing import Any

import numpy as np

from servewell.stats.ranking import Curve

Array = np.ndarray[Any, Any]

#: Equal-width probability bins of a reliability curve.
RELIABILITY_BINS = 10


def brier_score(onehot: Array, proba: Array) -> float:
    """Mean squared distance of the probabilities from the truth's one-hot row; halved for
    two classes, so a binary score is the mean of (p(positive) - is_positive)²."""
    truth = np.asarray(onehot, dtype=np.float64)
    squares = np.sum((truth - np.asarray(proba, dtype=np.float64)) ** 2, axis=1)
    score = float(np.mean(squares))
    return score / 2 if truth.shape[1] < 3 else score


def reliability_curve(hit: Array, confidence: Array, bins: int = RELIABILITY_BINS) -> Curve:
    """Per equal-width bin of ``confidence``: its mean (x) and the share of hits (y).

    For two classes ``confidence`` is p(positive) and ``hit`` says the row is positive;
    for more, the top class's probability and whether that class is right. Empty bins
    are left out.
    """
    confidence = np.asarray(confidence, dtype=np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.searchsorted(edges[1:-1], confidence)
    total = np.bincount(which, minlength=bins)
    predicted = np.bincount(which, weights=confidence, minlength=bins)
    observed = np.bincount(which, weights=np.asarray(hit, dtype=np.float64), minlength=bins)
    filled = total > 0
    return Curve(
        tuple((predicted[filled] / total[filled]).tolist()),
        tuple((observed[filled] / total[filled]).tolist()),
    )
