"""Quality on a window's labelled rows, with the metrics the training report uses
(:mod:`servewell.stats.classification` and :mod:`servewell.stats.regression`, each
defined as scikit-learn defines it)."""

from __future__ import annotations

from typing import Any

import numpy as np

from servewell.monitoring.tally import Tally
from servewell.stats import classification_metrics, regression_metrics


def quality(tally: Tally) -> dict[str, Any] | None:
    """The figures of the rows scored (None without any, or for a model whose outputs
    name no prediction)."""
    reading = tally.reading
    if not tally.truth or reading.task is None:
        return None
    if reading.task == "regression":
        try:
            found = regression_metrics(
                np.asarray(tally.truth, np.float64), np.asarray(tally.predicted, np.float64)
            )
        except (TypeError, ValueError):
            return None  # labels that are not numbers: nothing to score
        return {"task": "regression", **found.to_dict()}
    truth = np.asarray([reading.as_class(label) for label in tally.truth], dtype=object)
    predicted = np.asarray(tally.predicted, dtype=object)
    classes = reading.class_labels
    known = bool(classes) and set(truth) | set(predicted) <= set(classes)
    probabilities = None
    if known and all(row is not None for row in tally.probabilities):
        probabilities = np.asarray(tally.probabilities, np.float64)
    try:
        metrics = classification_metrics(
            truth,
            predicted,
            labels=classes if known else None,
            probabilities=probabilities,
        )
    except ValueError:  # ROC-AUC of one class: score the labels alone
        metrics = classification_metrics(truth, predicted, labels=classes if known else None)
    return {
        "task": "classification",
        "rows": len(truth),
        "accuracy": metrics.accuracy,
        "macro_precision": metrics.macro_precision,
        "macro_recall": metrics.macro_recall,
        "macro_f1": metrics.macro_f1,
        "roc_auc": metrics.roc_auc,
        "positive_label": metrics.positive_label,
        "per_class": {
            label: {"precision": m.precision, "recall": m.recall, "f1": m.f1, "support": m.support}
            for label, m in metrics.per_class.items()
        },
    }


def headline(figures: dict[str, Any] | None) -> tuple[str, float | None]:
    """The one figure a slice is plotted by: accuracy, or a regressor's MAE."""
    if figures is None:
        return "accuracy", None
    if figures["task"] == "regression":
        return "mae", figures["mae"]
    return "accuracy", figures["accuracy"]
