"""How much one feature alone tells about a target, measured out of sample.

A lookup table learnt on training rows (the majority class, or mean, per quantile bin
of a number or per category) is scored on held-out rows. A feature that scores near
perfectly on its own is a leakage suspect; an identifier column does not, because its
values on held-out rows were never seen.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Literal

import numpy as np

from servewell.core.task import Task
from servewell.stats.classification import majority_baseline
from servewell.stats.regression import regression_metrics

Array = np.ndarray[Any, Any]


def lookup_score(
    train_x: Array,
    train_y: Array,
    test_x: Array,
    test_y: Array,
    *,
    kind: Literal["numeric", "categorical"],
    task: Task,
    bins: int = 20,
) -> float:
    """Accuracy (classification) or R² (regression) of predicting ``test_y`` from one feature."""
    train_keys, test_keys = _keys(train_x, test_x, kind, bins)
    truth = np.asarray(test_y, dtype=object if task == "classification" else np.float64)
    if task == "classification":
        table = _majority_by_key(train_keys, np.asarray(train_y, dtype=object))
        fallback = majority_baseline(train_y)[0]
        guess = np.array([table.get(k, fallback) for k in test_keys], dtype=object)
        return float(np.mean([str(a) == str(b) for a, b in zip(truth, guess, strict=True)]))
    target = np.asarray(train_y, dtype=np.float64)
    means = {k: float(target[train_keys == k].mean()) for k in np.unique(train_keys)}
    default = float(target.mean())
    guess_values = np.array([means.get(k, default) for k in test_keys], dtype=np.float64)
    return regression_metrics(truth, guess_values).r2


def _keys(train_x: Array, test_x: Array, kind: str, bins: int) -> tuple[Array, Array]:
    if kind == "categorical":
        return (
            np.array([str(v) for v in np.asarray(train_x, dtype=object)], dtype=object),
            np.array([str(v) for v in np.asarray(test_x, dtype=object)], dtype=object),
        )
    train = np.asarray(train_x, dtype=np.float64)
    test = np.asarray(test_x, dtype=np.float64)
    finite = train[np.isfinite(train)]
    if len(finite) == 0:
        return np.zeros(len(train), dtype=np.int64), np.zeros(len(test), dtype=np.int64)
    edges = np.unique(np.quantile(finite, np.linspace(0, 1, bins + 1)[1:-1]))
    return _digitize(train, edges), _digitize(test, edges)


def _digitize(values: Array, edges: Array) -> Array:
    """Bin numbers by ``edges``; NaN gets a bin of its own."""
    binned = np.digitize(values, edges)
    binned[~np.isfinite(values)] = len(edges) + 1
    return binned


def _majority_by_key(keys: Array, labels: Array) -> dict[Any, Any]:
    counters: dict[Any, Counter[Any]] = {}
    for key, label in zip(keys.tolist(), labels.tolist(), strict=True):
        counters.setdefault(key, Counter())[label] += 1
    return {key: counter.most_common(1)[0][0] for key, counter in counters.items()}
