"""The leakage check: a feature that predicts the target (almost) alone, and validation
rows that also appear in training.

Each feature is scored alone, out of sample, on the training and validation rows
together (:func:`servewell.stats.association`): balanced accuracy, ROC-AUC and average
precision for classes, R² for a number. A feature is suspect when it is near perfect
on its own, or when it is strong, comes within a hair of the full model's validation
score (the model adds next to nothing to that one column) and stands alone: no other
feature comes close on its own. Strong legitimate features tend to come in families
that measure one thing (petal length and width, a tumour's radius, perimeter and area);
a column copied from the target has no such kin.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd

from servewell.core.task import Task
from servewell.stats import ClassificationMetrics, RegressionMetrics, association
from servewell.training.checks import Check
from servewell.training.config import ChecksConfig
from servewell.training.split import Split

#: Rows (at most, a seeded sample) each feature is scored on.
MAX_ROWS = 50_000
#: A feature at least this good alone (ROC-AUC, or R²) is compared with the full model.
STRONG = 0.9
#: ... and rivals it only when it beats every other feature alone by this much.
AHEAD_BY = 0.02

FeatureKind = Literal["numeric", "categorical"]


def check_leakage(
    rows: Split,
    kinds: dict[str, FeatureKind],
    metrics: ClassificationMetrics | RegressionMetrics,
    config: ChecksConfig,
    seed: int = 0,
) -> Check:
    """Features that predict the target alone; validation rows seen in training."""
    scores = feature_scores(rows, kinds, metrics, seed)
    model = _model_score(metrics)
    for index, score in enumerate(scores):
        others = scores[:index] + scores[index + 1 :]
        score["suspect"] = _suspicion(score, others, model, config)
    overlap = _overlap_rows(rows.x_train, rows.x_val)
    figures = {
        "features": scores,
        "model": model,
        "rows_scored": min(MAX_ROWS, len(rows.x_train) + len(rows.x_val)),
        "overlap_rows": overlap,
        "validation_rows": len(rows.x_val),
    }
    problems = [
        f"'{s['column']}' {s['suspect']}; is it known at prediction time?"
        for s in scores
        if s["suspect"]
    ]
    if overlap:
        problems.append(
            f"{overlap} validation row(s) ({overlap / len(rows.x_val):.1%}) also appear "
            "in training, which inflates the validation score"
        )
    if problems:
        return Check("leakage", "warn", "; ".join(problems), figures)
    strongest = f"; strongest single feature {_describe(scores[0], model)}" if scores else ""
    return Check(
        "leakage",
        "pass",
        f"no single feature predicts the target alone, no validation row appears in "
        f"training{strongest}",
        figures,
    )


def feature_scores(
    rows: Split,
    kinds: dict[str, FeatureKind],
    metrics: ClassificationMetrics | RegressionMetrics,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Every feature's out-of-sample scores alone, the strongest first."""
    frame = pd.concat([rows.x_train, rows.x_val], ignore_index=True)
    target = np.concatenate([rows.y_train, rows.y_val])
    if len(frame) > MAX_ROWS:
        keep = np.random.default_rng(seed).choice(len(frame), MAX_ROWS, replace=False)
        frame, target = frame.iloc[keep], target[keep]
    task: Task = "classification" if isinstance(metrics, ClassificationMetrics) else "regression"
    positive = metrics.positive_label if isinstance(metrics, ClassificationMetrics) else None
    scores = [
        {"column": name}
        | association(
            frame[name].to_numpy(), target, kind=kind, task=task, positive=positive, seed=seed
        ).to_dict()
        for name, kind in kinds.items()
    ]
    primary = "roc_auc" if task == "classification" else "r2"
    return sorted(scores, key=lambda s: -(s.get(primary) or 0.0))


def _model_score(metrics: ClassificationMetrics | RegressionMetrics) -> dict[str, float]:
    """The full model's validation score that a feature alone is compared with."""
    if isinstance(metrics, RegressionMetrics):
        return {"r2": metrics.r2}
    return {"roc_auc": metrics.roc_auc} if metrics.roc_auc is not None else {}


def _suspicion(
    score: dict[str, Any],
    others: list[dict[str, Any]],
    model: dict[str, float],
    config: ChecksConfig,
) -> str | None:
    """Why the feature looks like leakage (None when it does not)."""
    if "r2" in score:
        if score["r2"] >= config.leakage_r2:
            return f"alone predicts the target out of sample (R² {score['r2']:.3f})"
        return _rivals_model(score, others, model, "r2", config)
    if (score.get("balanced_accuracy") or 0.0) >= config.leakage_balanced_accuracy or (
        score.get("roc_auc") or 0.0
    ) >= config.leakage_roc_auc:
        return f"alone predicts the target out of sample ({_figures(score)})"
    return _rivals_model(score, others, model, "roc_auc", config)


def _rivals_model(
    score: dict[str, Any],
    others: list[dict[str, Any]],
    model: dict[str, float],
    measure: str,
    config: ChecksConfig,
) -> str | None:
    """A strong feature, well ahead of the others, that the full model barely improves on."""
    alone, full = score.get(measure), model.get(measure)
    if alone is None or full is None or alone < STRONG:
        return None
    if alone < full - config.leakage_model_margin:
        return None
    if any((other.get(measure) or 0.0) > alone - AHEAD_BY for other in others):
        return None
    name = "R²" if measure == "r2" else "ROC-AUC"
    return (
        f"alone predicts the target about as well as the full model ({name} {alone:.3f} "
        f"vs the model's {full:.3f}), far ahead of every other feature"
    )


def _describe(score: dict[str, Any], model: dict[str, float]) -> str:
    ours = ", ".join(f"{_NAMES[k]} {v:.3f}" for k, v in model.items())
    return f"'{score['column']}' ({_figures(score)}" + (f"; the model's {ours})" if ours else ")")


_NAMES = {
    "balanced_accuracy": "balanced accuracy",
    "roc_auc": "ROC-AUC",
    "average_precision": "average precision",
    "r2": "R²",
}


def _figures(score: dict[str, Any]) -> str:
    return ", ".join(f"{_NAMES[k]} {score[k]:.3f}" for k in _NAMES if score.get(k) is not None)


def _overlap_rows(x_train: pd.DataFrame, x_val: pd.DataFrame) -> int:
    seen = set(pd.util.hash_pandas_object(x_train, index=False).tolist())
    return int(sum(h in seen for h in pd.util.hash_pandas_object(x_val, index=False).tolist()))
