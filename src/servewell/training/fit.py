"""Fitting: the features first, then the estimator, with a per-epoch trace.

The MLP is trained one epoch at a time (``partial_fit``) so loss and accuracy can be
shown live; it has converged when its loss stopped improving by ``tol`` for
``patience`` epochs, as scikit-learn's own ``fit`` decides. Gradient boosting reports
one trace point per stage. Warnings raised while fitting are caught here and recorded
(a ConvergenceWarning becomes a failure or a recorded check, as configured).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from servewell.core.task import Task
from servewell.errors import InvalidConfig, TrainingFailed
from servewell.training.config import EstimatorConfig


@dataclass(frozen=True, slots=True)
class EpochRecord:
    """One point of the training curve."""

    epoch: int
    loss: float | None
    train_score: float
    validation_score: float


@dataclass(slots=True)
class Trace:
    """How training went: the curve, whether it converged, what scikit-learn warned about."""

    metric: str
    """What ``train_score``/``validation_score`` measure: accuracy or r2."""
    epochs: list[EpochRecord] = field(default_factory=list)
    converged: bool | None = None
    """None for estimators that have no notion of convergence (random forests)."""
    note: str = ""
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "epochs": [asdict(e) for e in self.epochs],
            "converged": self.converged,
            "note": self.note,
            "warnings": self.warnings,
        }


OnEpoch = Callable[[EpochRecord, int], None]


def fit_model(
    preprocessor: Any,
    estimator: Any,
    train: tuple[pd.DataFrame, np.ndarray[Any, Any]],
    validation: tuple[pd.DataFrame, np.ndarray[Any, Any]],
    config: EstimatorConfig,
    task: Task,
    on_epoch: OnEpoch | None = None,
) -> tuple[Any, Trace]:
    """The fitted Pipeline (preprocessing steps + ``model``) and its training trace."""
    from sklearn.pipeline import Pipeline

    trace = Trace(metric="accuracy" if task == "classification" else "r2")
    x_train, y_train = train
    x_val, y_val = validation
    with _recording(trace, type(estimator).__name__):
        train_features = preprocessor.fit_transform(x_train, y_train)
        val_features = preprocessor.transform(x_val)
        data = (train_features, y_train, val_features, y_val)
        if config.kind == "mlp":
            _fit_epochs(estimator, data, config, task, trace, on_epoch)
        else:
            estimator.fit(train_features, y_train)
            if config.kind == "gradient_boosting":
                _trace_stages(estimator, data, trace, on_epoch)
    _check_convergence(trace, config, type(estimator).__name__)
    model = Pipeline([*preprocessor.steps, ("model", estimator)])
    return model, trace


def _fit_epochs(
    estimator: Any,
    data: tuple[Any, Any, Any, Any],
    config: EstimatorConfig,
    task: Task,
    trace: Trace,
    on_epoch: OnEpoch | None,
) -> None:
    x_train, y_train, x_val, y_val = data
    classes = np.unique(y_train) if task == "classification" else None
    best, stale = math.inf, 0
    trace.converged = False
    for epoch in range(1, config.max_epochs + 1):
        if classes is not None:
            estimator.partial_fit(x_train, y_train, classes=classes)
        else:
            estimator.partial_fit(x_train, y_train)
        loss = float(estimator.loss_)
        if not math.isfinite(loss):
            raise TrainingFailed(
                f"{type(estimator).__name__} diverged: the loss became {loss} at epoch {epoch}; "
                "lower learning_rate_init in estimator.params, or keep feature scaling on"
            )
        record = EpochRecord(
            epoch, loss, float(estimator.score(x_train, y_train)),
            float(estimator.score(x_val, y_val)),
        )  # fmt: skip
        trace.epochs.append(record)
        if on_epoch is not None:
            on_epoch(record, config.max_epochs)
        stale = stale + 1 if loss > best - config.tol else 0
        best = min(best, loss)
        if stale >= config.patience:
            trace.converged = True
            trace.note = f"converged after {epoch} epochs"
            return
    trace.note = (
        f"did not converge in {config.max_epochs} epochs: the loss still improved by more "
        f"than tol={config.tol} within the last {config.patience} epochs"
    )


def _trace_stages(
    estimator: Any, data: tuple[Any, Any, Any, Any], trace: Trace, on_epoch: OnEpoch | None
) -> None:
    x_train, y_train, x_val, y_val = data
    from sklearn.metrics import accuracy_score, r2_score

    score = accuracy_score if trace.metric == "accuracy" else r2_score
    stages = zip(estimator.staged_predict(x_train), estimator.staged_predict(x_val), strict=True)
    total = len(estimator.train_score_)
    for stage, (train_pred, val_pred) in enumerate(stages, start=1):
        record = EpochRecord(
            stage, float(estimator.train_score_[stage - 1]),
            float(score(y_train, train_pred)), float(score(y_val, val_pred)),
        )  # fmt: skip
        trace.epochs.append(record)
        if on_epoch is not None:
            on_epoch(record, total)


@contextmanager
def _recording(trace: Trace, name: str) -> Iterator[None]:
    """Catch what fitting warns about (into the trace) and what it raises (TrainingFailed)."""
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        except (TrainingFailed, InvalidConfig):
            raise
        except MemoryError as exc:
            raise TrainingFailed(f"{name} ran out of memory while fitting") from exc
        except Exception as exc:
            raise TrainingFailed(f"{name} failed while fitting: {_first_line(exc)}") from exc
    for warning in caught:
        if issubclass(warning.category, ConvergenceWarning):
            trace.converged = False
            trace.note = f"did not converge: {_first_line(warning.message)}"
        else:
            message = f"{warning.category.__name__}: {_first_line(warning.message)}"
            if message not in trace.warnings:
                trace.warnings.append(message)
    if trace.converged is None and name.startswith("Logistic"):
        trace.converged = True


def _check_convergence(trace: Trace, config: EstimatorConfig, name: str) -> None:
    if trace.converged is False and config.on_no_convergence == "fail":
        raise TrainingFailed(
            f"{name} {trace.note}; raise estimator.max_epochs, adjust estimator.params, "
            "or set estimator.on_no_convergence: warn to register it anyway"
        )


def _first_line(value: object) -> str:
    text = str(value).strip()
    return text.splitlines()[0] if text else type(value).__name__
