"""Classification metrics computed from predictions, in plain numpy.

Each figure is defined as scikit-learn defines it (the tests compare them on the same
predictions), so a number in a report means what a reader of scikit-learn's docs
expects: precision of a class with no predictions is 0 (``zero_division=0``), macro F1
is the mean of the per-class F1 scores, PR-AUC is average precision, and log loss clips
probabilities to ``[eps, 1 - eps]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

Array = np.ndarray[Any, Any]
Label = str | int


@dataclass(frozen=True, slots=True)
class ClassMetrics:
    """How well one class is found."""

    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True, slots=True)
class Curve:
    """A curve as two aligned series, ready to plot (ROC: fpr/tpr; PR: recall/precision)."""

    x: tuple[float, ...]
    y: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class ClassificationMetrics:
    """Every classification figure the pipeline reports."""

    labels: tuple[Label, ...]
    accuracy: float
    per_class: dict[str, ClassMetrics]
    macro_precision: float
    macro_recall: float
    macro_f1: float
    confusion: tuple[tuple[int, ...], ...]
    """Rows are true labels, columns predicted labels, both in ``labels`` order."""
    positive_label: Label | None = None
    """The positive class of a binary problem (the one ROC and PR curves are about)."""
    roc_auc: float | None = None
    pr_auc: float | None = None
    log_loss: float | None = None
    roc_curve: Curve | None = None
    pr_curve: Curve | None = None

    def to_dict(self, *, curves: bool = False) -> dict[str, Any]:
        data = asdict(self)
        data["labels"] = list(self.labels)
        data["confusion"] = [list(row) for row in self.confusion]
        if not curves:
            data.pop("roc_curve")
            data.pop("pr_curve")
        return data

    def headline(self) -> dict[str, float]:
        """The flat figures a registry version keeps as its metrics."""
        figures = {
            "accuracy": self.accuracy,
            "macro_precision": self.macro_precision,
            "macro_recall": self.macro_recall,
            "macro_f1": self.macro_f1,
        }
        if self.positive_label is not None:
            positive = self.per_class[str(self.positive_label)]
            figures |= {
                "precision": positive.precision,
                "recall": positive.recall,
                "f1": positive.f1,
            }
        for name in ("roc_auc", "pr_auc", "log_loss"):
            value = getattr(self, name)
            if value is not None:
                figures[name] = value
        return figures


def confusion_matrix(y_true: Array, y_pred: Array, labels: Sequence[Label]) -> Array:
    """Counts of (true, predicted) pairs; rows true, columns predicted, in ``labels`` order."""
    index = {label: i for i, label in enumerate(labels)}
    matrix = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for truth, guess in zip(_plain_all(y_true), _plain_all(y_pred), strict=True):
        matrix[index[truth], index[guess]] += 1
    return matrix


def classification_metrics(
    y_true: Array,
    y_pred: Array,
    *,
    labels: Sequence[Label] | None = None,
    probabilities: Array | None = None,
    positive_label: Label | None = None,
) -> ClassificationMetrics:
    """All figures for predicted labels and, optionally, class probabilities.

    ``probabilities`` has one column per label, in ``labels`` order (a fitted
    classifier's ``classes_``). For two classes the positive label defaults to the
    second one, as scikit-learn's ``pos_label=1`` does for 0/1 targets.
    """
    truth, guess = _plain_all(y_true), _plain_all(y_pred)
    if len(truth) == 0:
        raise ValueError("no rows to score")
    if len(truth) != len(guess):
        raise ValueError(f"{len(truth)} true labels but {len(guess)} predictions")
    labels = tuple(labels) if labels is not None else tuple(sorted(set(truth) | set(guess)))
    matrix = confusion_matrix(
        np.asarray(truth, dtype=object), np.asarray(guess, dtype=object), labels
    )
    per_class = _per_class(matrix, labels)
    binary = len(labels) == 2
    if binary and positive_label is None:
        positive_label = labels[1]
    figures: dict[str, Any] = {}
    if probabilities is not None:
        proba = np.asarray(probabilities, dtype=np.float64)
        if proba.shape != (len(truth), len(labels)):
            raise ValueError(
                f"probabilities have shape {proba.shape}, expected {(len(truth), len(labels))}"
            )
        figures["log_loss"] = log_loss(truth, proba, labels)
        if binary:
            assert positive_label is not None
            is_positive = np.array([t == positive_label for t in truth])
            score = proba[:, labels.index(positive_label)]
            if 0 < is_positive.sum() < len(truth):
                roc, pr = roc_curve(is_positive, score), precision_recall_curve(is_positive, score)
                figures |= {
                    "roc_auc": float(np.trapezoid(roc.y, roc.x)),
                    "pr_auc": average_precision(is_positive, score),
                    "roc_curve": roc,
                    "pr_curve": pr,
                }
    return ClassificationMetrics(
        labels=labels,
        accuracy=float(np.trace(matrix) / matrix.sum()),
        per_class=per_class,
        macro_precision=_mean(m.precision for m in per_class.values()),
        macro_recall=_mean(m.recall for m in per_class.values()),
        macro_f1=_mean(m.f1 for m in per_class.values()),
        confusion=tuple(tuple(int(v) for v in row) for row in matrix),
        positive_label=positive_label if binary else None,
        **figures,
    )


def majority_baseline(y_true: Array) -> tuple[Label, float]:
    """The most frequent label and the accuracy of always predicting it."""
    values, counts = np.unique(np.asarray(_plain_all(y_true), dtype=object), return_counts=True)
    best = int(np.argmax(counts))
    return _plain(values[best]), float(counts[best] / counts.sum())


def log_loss(y_true: Sequence[Label], probabilities: Array, labels: Sequence[Label]) -> float:
    """Mean negative log-likelihood of the true labels, probabilities clipped to [eps, 1-eps]."""
    proba = np.asarray(probabilities, dtype=np.float64)
    eps = np.finfo(proba.dtype).eps
    proba = np.clip(proba, eps, 1 - eps)
    column = {label: i for i, label in enumerate(labels)}
    picked = proba[np.arange(len(y_true)), [column[t] for t in y_true]]
    return float(-np.mean(np.log(picked)))


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


def average_precision(is_positive: Array, score: Array) -> float:
    """Sum over thresholds of (recall gained) x precision: scikit-learn's PR-AUC."""
    fps, tps = _cumulative_counts(is_positive, score)
    precision = tps / (tps + fps)
    gained = np.diff(np.concatenate([[0.0], tps])) / tps[-1]
    return float(np.sum(gained * precision))


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


def _per_class(matrix: Array, labels: Sequence[Label]) -> dict[str, ClassMetrics]:
    result: dict[str, ClassMetrics] = {}
    for i, label in enumerate(labels):
        hits = float(matrix[i, i])
        predicted, actual = float(matrix[:, i].sum()), float(matrix[i, :].sum())
        precision = hits / predicted if predicted else 0.0
        recall = hits / actual if actual else 0.0
        denominator = precision + recall
        f1 = 2 * precision * recall / denominator if denominator else 0.0
        result[str(label)] = ClassMetrics(precision, recall, f1, int(actual))
    return result


def _mean(values: Any) -> float:
    return float(np.mean(list(values)))


def _plain_all(values: Array | Sequence[Any]) -> list[Label]:
    return [_plain(v) for v in np.asarray(values, dtype=object).reshape(-1)]


def _plain(value: Any) -> Label:
    """numpy scalars and bytes as plain ``int``/``str``, so labels compare and serialize."""
    if isinstance(value, bool | np.bool_):
        return int(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return int(value)
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return str(value)
