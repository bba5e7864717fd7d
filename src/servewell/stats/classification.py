"""Classification metrics computed from predictions, in plain numpy.

Each figure is defined as scikit-learn defines it (the tests compare them on the same
predictions), so a number in a report means what a reader of scikit-learn's docs
expects: precision of a class with no predictions is 0 (``zero_division=0``), macro F1
is the mean of the per-class F1 scores, PR-AUC is average precision, log loss clips
probabilities to ``[eps, 1 - eps]``, a multiclass ROC-AUC is one-vs-rest (macro, and
weighted by support), and the Brier score is halved for two classes
(``scale_by_half="auto"``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from servewell.stats.calibration import brier_score, reliability_curve
from servewell.stats.ranking import (
    Curve,
    average_precision,
    one_vs_rest_auc,
    precision_recall_curve,
    roc_auc,
    roc_curve,
)

Array = np.ndarray[Any, Any]
Label = str | int

#: The series a report plots, left out of the flat JSON unless asked for.
CURVES = ("roc_curve", "pr_curve", "calibration_curve")


@dataclass(frozen=True, slots=True)
class ClassMetrics:
    """How well one class is found."""

    precision: float
    recall: float
    f1: float
    support: int


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
    """Binary: of the positive class; multiclass: the one-vs-rest macro average."""
    roc_auc_weighted: float | None = None
    """Multiclass only: one-vs-rest, weighted by each class's support."""
    pr_auc: float | None = None
    log_loss: float | None = None
    brier_score: float | None = None
    roc_curve: Curve | None = None
    pr_curve: Curve | None = None
    calibration_curve: Curve | None = None
    """Binary: p(positive) against the positive share; multiclass: the top class's
    probability against how often it is right."""

    def to_dict(self, *, curves: bool = False) -> dict[str, Any]:
        data = asdict(self)
        data["labels"] = list(self.labels)
        data["confusion"] = [list(row) for row in self.confusion]
        if not curves:
            for name in CURVES:
                data.pop(name)
        return data

    @property
    def balanced_accuracy(self) -> float:
        """The mean recall of the classes present (scikit-learn's balanced accuracy)."""
        return _mean(m.recall for m in self.per_class.values() if m.support)

    @property
    def prevalence(self) -> float | None:
        """The positive class's share of the rows (a binary problem's PR baseline)."""
        if self.positive_label is None:
            return None
        total = sum(m.support for m in self.per_class.values())
        return self.per_class[str(self.positive_label)].support / total if total else None

    def headline(self) -> dict[str, float]:
        """The flat figures a registry version keeps as its metrics."""
        figures = {
            "accuracy": self.accuracy,
            "balanced_accuracy": self.balanced_accuracy,
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
        for name in ("roc_auc", "roc_auc_weighted", "pr_auc", "log_loss", "brier_score"):
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
    if not binary:
        positive_label = None
    figures = (
        _probability_figures(truth, np.asarray(probabilities, np.float64), labels, positive_label)
        if probabilities is not None
        else {}
    )
    return ClassificationMetrics(
        labels=labels,
        accuracy=float(np.trace(matrix) / matrix.sum()),
        per_class=per_class,
        macro_precision=_mean(m.precision for m in per_class.values()),
        macro_recall=_mean(m.recall for m in per_class.values()),
        macro_f1=_mean(m.f1 for m in per_class.values()),
        confusion=tuple(tuple(int(v) for v in row) for row in matrix),
        positive_label=positive_label,
        **figures,
    )


def _probability_figures(
    truth: list[Label], proba: Array, labels: tuple[Label, ...], positive: Label | None
) -> dict[str, Any]:
    """Log loss, Brier score, ROC-AUC, the curves and (binary) PR-AUC."""
    if proba.shape != (len(truth), len(labels)):
        raise ValueError(
            f"probabilities have shape {proba.shape}, expected {(len(truth), len(labels))}"
        )
    column = {label: i for i, label in enumerate(labels)}
    onehot = np.zeros(proba.shape, dtype=bool)
    onehot[np.arange(len(truth)), [column[t] for t in truth]] = True
    figures: dict[str, Any] = {
        "log_loss": log_loss(truth, proba, labels),
        "brier_score": brier_score(onehot, proba),
    }
    if positive is None:
        right = onehot[np.arange(len(truth)), np.argmax(proba, axis=1)]
        return figures | {
            "roc_auc": one_vs_rest_auc(onehot, proba),
            "roc_auc_weighted": one_vs_rest_auc(onehot, proba, weighted=True),
            "calibration_curve": reliability_curve(right, proba.max(axis=1)),
        }
    is_positive, score = onehot[:, column[positive]], proba[:, column[positive]]
    figures["calibration_curve"] = reliability_curve(is_positive, score)
    area = roc_auc(is_positive, score)
    if area is None:
        return figures
    return figures | {
        "roc_auc": area,
        "pr_auc": average_precision(is_positive, score),
        "roc_curve": roc_curve(is_positive, score),
        "pr_curve": precision_recall_curve(is_positive, score),
    }


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
