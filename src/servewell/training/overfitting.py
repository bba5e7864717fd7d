"""The overfitting check: training scores against validation scores, on every measure
that can show the gap.

Accuracy alone hides a rare class learnt by heart and missed on new rows (training
recall 1.0, validation 0.3, accuracy gap 0.03), so a classifier is judged on accuracy,
balanced accuracy, ROC-AUC and the rarest class's recall; a regressor on R². A gap trips
the check when it is wider than ``checks.max_overfit_gap`` *and* than chance would make
it (twice its standard error on these row counts), so a small validation split does not
warn of overfitting by luck. Log loss is shown, not judged: it has no natural scale for
a gap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from servewell.stats import ClassificationMetrics, RegressionMetrics
from servewell.stats.uncertainty import auc_error, mean_share_error, share_error
from servewell.training.checks import Check
from servewell.training.config import ChecksConfig

Metrics = ClassificationMetrics | RegressionMetrics

#: Standard errors a gap must exceed to be more than chance.
NOISE_ERRORS = 2.0


@dataclass(frozen=True, slots=True)
class Gap:
    """One measure on training and validation rows, and how wide chance makes the gap."""

    train: float
    validation: float
    noise: float

    @property
    def width(self) -> float:
        return self.train - self.validation

    def to_dict(self) -> dict[str, float]:
        noise = self.noise if math.isfinite(self.noise) else None
        return {"train": self.train, "validation": self.validation, "gap": self.width} | (
            {"noise": noise} if noise is not None else {}
        )


def check_overfitting(train: Metrics, validation: Metrics, config: ChecksConfig) -> Check:
    gaps = measure_gaps(train, validation)
    measures: dict[str, Any] = {name: gap.to_dict() for name, gap in gaps.items()}
    losses = [getattr(m, "log_loss", None) for m in (train, validation)]
    if None not in losses:
        measures["log_loss"] = {"train": losses[0], "validation": losses[1]}
    limit = config.max_overfit_gap
    tripped = [n for n, g in gaps.items() if g.width > limit and g.width > g.noise]
    figures = {"measures": measures, "tripped": tripped, "max_gap": limit}
    if tripped:
        found = "; ".join(_describe(name, gaps[name]) for name in tripped)
        return Check(
            "overfitting",
            "warn",
            f"training rows score far better than validation rows on {found} (a gap over "
            f"{limit}, and over what chance gives on this many validation rows)",
            figures,
        )
    widest = max(gaps, key=lambda name: gaps[name].width)
    return Check(
        "overfitting",
        "pass",
        f"no training-validation gap beyond {limit} and chance "
        f"({', '.join(_label(name) for name in gaps)}); widest: "
        f"{_describe(widest, gaps[widest])}",
        figures,
    )


def measure_gaps(train: Metrics, validation: Metrics) -> dict[str, Gap]:
    """Each measure both sides have, by name."""
    if isinstance(train, RegressionMetrics):
        assert isinstance(validation, RegressionMetrics)
        noise = _noise(_r2_error(train), _r2_error(validation))
        return {"r2": Gap(train.r2, validation.r2, noise)}
    assert isinstance(validation, ClassificationMetrics)
    gaps = {
        "accuracy": _share_gap(train, validation, lambda m: (m.accuracy, _rows(m))),
        "balanced_accuracy": Gap(
            train.balanced_accuracy,
            validation.balanced_accuracy,
            _noise(_balanced_error(train), _balanced_error(validation)),
        ),
    }
    if train.roc_auc is not None and validation.roc_auc is not None:
        noise = _noise(_auc_error(train), _auc_error(validation))
        gaps["roc_auc"] = Gap(train.roc_auc, validation.roc_auc, noise)
    rarest = min(validation.per_class, key=lambda name: validation.per_class[name].support)
    gaps[f"recall of '{rarest}'"] = _share_gap(
        train,
        validation,
        lambda m: (m.per_class[rarest].recall, m.per_class[rarest].support),
    )
    return gaps


def _share_gap(train: ClassificationMetrics, validation: ClassificationMetrics, of: Any) -> Gap:
    (a, rows_a), (b, rows_b) = of(train), of(validation)
    return Gap(a, b, _noise(share_error(a, rows_a), share_error(b, rows_b)))


def _noise(*errors: float) -> float:
    return NOISE_ERRORS * math.sqrt(sum(e**2 for e in errors))


def _rows(metrics: ClassificationMetrics) -> int:
    return sum(m.support for m in metrics.per_class.values())


def _balanced_error(metrics: ClassificationMetrics) -> float:
    present = [m for m in metrics.per_class.values() if m.support]
    return mean_share_error([m.recall for m in present], [m.support for m in present])


def _auc_error(metrics: ClassificationMetrics) -> float:
    """A binary AUC's error, or the macro average's over its one-vs-rest classes."""
    assert metrics.roc_auc is not None
    rows = _rows(metrics)
    supports = [m.support for m in metrics.per_class.values() if m.support]
    if metrics.positive_label is not None:
        positives = metrics.per_class[str(metrics.positive_label)].support
        return auc_error(metrics.roc_auc, positives, rows - positives)
    errors = [auc_error(metrics.roc_auc, n, rows - n) for n in supports]
    return math.sqrt(sum(e**2 for e in errors)) / len(errors)


def _r2_error(metrics: RegressionMetrics) -> float:
    """About (1 - R²)·√(2/n) on n rows: the error of its mean squared error, a variance
    estimate (the target's spread taken as known)."""
    return max(1 - metrics.r2, 0.0) * math.sqrt(2 / max(metrics.rows, 1))


_LABELS = {"balanced_accuracy": "balanced accuracy", "roc_auc": "ROC-AUC", "r2": "R²"}


def _label(name: str) -> str:
    return _LABELS.get(name, name)


def _describe(name: str, gap: Gap) -> str:
    chance = f", chance ±{gap.noise:.3f}" if math.isfinite(gap.noise) else ""
    return f"{_label(name)} ({gap.train:.3f} vs {gap.validation:.3f}, gap {gap.width:.3f}{chance})"
