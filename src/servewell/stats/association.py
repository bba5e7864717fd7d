"""How much one feature alone tells about a target, measured out of sample.

A lookup table (each class's share, or the target's mean, per category of a text column
or per bin of a number) is learnt on four fifths of the rows and applied to the fifth
it never saw, five times over, so every row gets an out-of-sample prediction (averaged
over three shuffles). A number's
bins are quantiles of its values (the target plays no part in them), about ten rows
each, and every value that fills a bin on its own (every value, when there are few) gets
a bin to itself: a 0/1 column never shares one. An identifier scores at chance, because
held-out values were never seen; a copy of the target, a near-copy, or an identifier
assigned in target order scores near perfectly.

The predictions are scored by measures that hold under class imbalance: balanced
accuracy (predicting the class whose share most exceeds its prior), ROC-AUC and average
precision (one-vs-rest, macro, for more than two classes); R² for a number. A number's
ROC-AUC for a binary target is the better of the lookup's and the number's own, used as
a score either way up.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from servewell.core.task import Task
from servewell.stats.binning import bin_edges
from servewell.stats.ranking import (
    average_precision,
    one_vs_rest_auc,
    one_vs_rest_average_precision,
    roc_auc,
)
from servewell.stats.regression import regression_metrics

Array = np.ndarray[Any, Any]
Kind = Literal["numeric", "categorical"]

FOLDS = 5
#: Shuffles into folds whose predictions are averaged, so a score does not hang on
#: one split's luck.
REPEATS = 3
ROWS_PER_BIN = 10
MIN_BINS, MAX_BINS = 10, 1000
#: Pseudo-rows of the overall distribution mixed into each bin, so a bin of one row
#: does not claim certainty.
SMOOTHING = 1.0
#: The key of a missing value, of either kind.
MISSING = "\x00missing"


@dataclass(frozen=True, slots=True)
class Association:
    """Scores of one feature's out-of-sample lookup: classification or regression ones."""

    balanced_accuracy: float | None = None
    roc_auc: float | None = None
    average_precision: float | None = None
    r2: float | None = None

    def to_dict(self) -> dict[str, float]:
        return {name: value for name, value in asdict(self).items() if value is not None}


def association(
    values: Array,
    target: Array,
    *,
    kind: Kind,
    task: Task,
    positive: Any = None,
    seed: int = 0,
) -> Association:
    """How well ``values`` alone predict ``target`` on rows the lookup did not learn from.

    ``positive`` is the class a binary target's average precision is about (default:
    the greater label, as scikit-learn's).
    """
    keys = _keys(np.asarray(values), kind)
    folds = [_folds(len(keys), seed + repeat) for repeat in range(REPEATS)]
    if task == "regression":
        truth = np.asarray(target, dtype=np.float64)
        predicted = _out_of_fold(keys, folds, lambda a, b: _means(keys, truth, a, b), 1)
        return Association(r2=regression_metrics(truth, predicted[:, 0]).r2)
    classes, codes = np.unique(np.asarray(target), return_inverse=True)
    onehot = np.eye(len(classes), dtype=bool)[codes]
    proba = _out_of_fold(keys, folds, lambda a, b: _shares(keys, codes, a, b), len(classes))
    scores = _classification_scores(onehot, proba, _positive_column(classes, positive))
    if kind == "numeric" and len(classes) == 2 and scores.roc_auc is not None:
        # The number itself as a score, either way up: what a few rare positives in a
        # bin of their own cannot show.
        ranked = roc_auc(onehot[:, 1], _missing_lowest(np.asarray(values, np.float64)))
        if ranked is not None:
            best = max(scores.roc_auc, ranked, 1 - ranked)
            scores = Association(scores.balanced_accuracy, best, scores.average_precision)
    return scores


def _missing_lowest(numbers: Array) -> Array:
    finite = numbers[np.isfinite(numbers)]
    lowest = float(finite.min()) - 1.0 if len(finite) else 0.0
    return np.where(np.isfinite(numbers), numbers, lowest)


def _classification_scores(onehot: Array, proba: Array, positive: int) -> Association:
    """Balanced accuracy of the prior-corrected guess, ROC-AUC and average precision."""
    prior = onehot.mean(axis=0)
    guess = np.argmax(proba / prior, axis=1)
    truth = np.argmax(onehot, axis=1)
    recalls = [np.mean(guess[truth == c] == c) for c in range(onehot.shape[1]) if prior[c]]
    if onehot.shape[1] == 2:
        area = roc_auc(onehot[:, positive], proba[:, positive])
        precision = average_precision(onehot[:, positive], proba[:, positive])
    else:
        area = one_vs_rest_auc(onehot, proba)
        precision = one_vs_rest_average_precision(onehot, proba)
    return Association(float(np.mean(recalls)), area, precision)


def _positive_column(classes: Array, positive: Any) -> int:
    names = [str(c) for c in classes.tolist()]
    return names.index(str(positive)) if positive is not None else len(classes) - 1


def _out_of_fold(keys: Array, splits: list[Array], predict: Any, width: int) -> Array:
    """Each row predicted by tables learnt on the other folds, averaged over the splits."""
    result = np.zeros((len(keys), width), dtype=np.float64)
    for folds in splits:
        for fold in np.unique(folds):
            held_out = folds == fold
            result[held_out] += predict(~held_out, held_out)
    return result / len(splits)


def _shares(keys: Array, codes: Array, learn: Array, apply: Array) -> Array:
    """Each class's smoothed share per key of the ``learn`` rows, for the ``apply`` rows
    (a key the ``learn`` rows lack gets the classes' overall shares)."""
    width, size = int(codes.max()) + 1, int(keys.max()) + 1
    prior = np.bincount(codes[learn], minlength=width) / np.count_nonzero(learn)
    counts = np.bincount(keys[learn] * width + codes[learn], minlength=size * width)
    counts = counts.reshape(size, width)
    table = (counts + SMOOTHING * prior) / (counts.sum(axis=1, keepdims=True) + SMOOTHING)
    shares: Array = table[keys[apply]]
    return shares


def _means(keys: Array, truth: Array, learn: Array, apply: Array) -> Array:
    """The target's smoothed mean per key of the ``learn`` rows, for the ``apply`` rows."""
    mean = float(truth[learn].mean())
    size = int(keys.max()) + 1
    sums = np.bincount(keys[learn], weights=truth[learn], minlength=size)
    counts = np.bincount(keys[learn], minlength=size)
    table = (sums + SMOOTHING * mean) / (counts + SMOOTHING)
    means: Array = table[keys[apply]][:, None]
    return means


def _keys(values: Array, kind: Kind) -> Array:
    """One key per row, numbered from 0: a category's, or a number's bin (missing values
    have a key of their own)."""
    if kind == "categorical":
        text = np.array([MISSING if _is_missing(v) else str(v) for v in values], dtype=object)
        return np.unique(text, return_inverse=True)[1].astype(np.int64)
    numbers = values.astype(np.float64)
    finite = np.isfinite(numbers)
    edges = bin_edges(numbers[finite], bins_for(int(finite.sum())))
    bins = np.searchsorted(edges, numbers, side="right").astype(np.int64)
    bins[~finite] = len(edges) + 1
    return bins


def bins_for(rows: int) -> int:
    """About ``ROWS_PER_BIN`` rows a bin, within ``MIN_BINS`` and ``MAX_BINS``."""
    return int(np.clip(rows // ROWS_PER_BIN, MIN_BINS, MAX_BINS))


def _folds(rows: int, seed: int) -> Array:
    """A fold number per row, shuffled; fewer folds when there are very few rows."""
    count = max(2, min(FOLDS, rows))
    folds = np.arange(rows) % count
    np.random.default_rng(seed).shuffle(folds)
    return folds


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))
