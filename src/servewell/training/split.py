"""Training and validation rows, and k-fold cross-validation on the training part."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from servewell.core.task import Task
from servewell.errors import InvalidData
from servewell.training.config import PipelineConfig
from servewell.training.features import FeaturePlan

Array = np.ndarray[Any, Any]


@dataclass(frozen=True, slots=True)
class Split:
    """The model's raw input columns and the target, for training and for validation."""

    x_train: pd.DataFrame
    x_val: pd.DataFrame
    y_train: Array
    y_val: Array

    @property
    def train(self) -> tuple[pd.DataFrame, Array]:
        return self.x_train, self.y_train

    @property
    def validation(self) -> tuple[pd.DataFrame, Array]:
        return self.x_val, self.y_val


def split_rows(
    cleaned: pd.DataFrame, target: str, plan: FeaturePlan, task: Task, config: PipelineConfig
) -> Split:
    """A seeded split, stratified by class when configured (and classifying)."""
    from sklearn.model_selection import train_test_split

    features = cleaned[list(plan.inputs)]
    y = cleaned[target].to_numpy()
    stratify = y if task == "classification" and config.split.stratify else None
    try:
        x_train, x_val, y_train, y_val = train_test_split(
            features,
            y,
            test_size=config.split.validation_fraction,
            random_state=config.split.seed,
            stratify=stratify,
        )
    except ValueError as exc:
        raise InvalidData(f"cannot split {len(cleaned)} rows for validation: {exc}") from exc
    return Split(x_train.reset_index(drop=True), x_val.reset_index(drop=True), y_train, y_val)


def cross_validate(
    preprocessor: Any, estimator: Any, split: Split, task: Task, config: PipelineConfig
) -> dict[str, Any] | None:
    """Scores of fresh copies on ``split.folds`` folds of the training rows (None if < 2)."""
    folds = config.split.folds
    if folds < 2:
        return None
    from sklearn.base import clone
    from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score
    from sklearn.pipeline import Pipeline

    fresh = clone(estimator)
    if config.estimator.kind == "mlp":
        fresh.set_params(
            max_iter=config.estimator.max_epochs,
            tol=config.estimator.tol,
            n_iter_no_change=config.estimator.patience,
        )
    splitter_cls = StratifiedKFold if task == "classification" else KFold
    splitter = splitter_cls(n_splits=folds, shuffle=True, random_state=config.split.seed)
    metric = "accuracy" if task == "classification" else "r2"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the final model's own fit reports its warnings
        scores = cross_val_score(
            Pipeline([*clone(preprocessor).steps, ("model", fresh)]),
            split.x_train,
            split.y_train,
            cv=splitter,
            scoring=metric,
            error_score="raise",
        )
    return {
        "folds": folds,
        "metric": metric,
        "scores": scores.tolist(),
        "mean": float(scores.mean()),
        "std": float(scores.std()),
    }
