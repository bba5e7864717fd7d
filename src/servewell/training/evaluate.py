"""Scoring predictions, in-process or through a registered version, with the same metrics."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from servewell.core.datetimes import parse_datetimes
from servewell.core.signature import Signature, TensorSpec
from servewell.core.task import Task
from servewell.core.validation import InputLimits, validate_inputs
from servewell.errors import InvalidData
from servewell.runtime.base import Runtime
from servewell.stats import (
    ClassificationMetrics,
    RegressionMetrics,
    classification_metrics,
    regression_metrics,
)
from servewell.training.data import require_column
from servewell.training.signature import to_inputs

Metrics = ClassificationMetrics | RegressionMetrics
Array = np.ndarray[Any, Any]


@dataclass(frozen=True, slots=True)
class Predictions:
    """What a model said about some rows, in the runtime's output names."""

    label: Array | None = None
    probabilities: Array | None = None
    value: Array | None = None

    def to_outputs(self) -> Array:
        result = self.label if self.label is not None else self.value
        assert result is not None
        return result


def predict(model: Any, frame: pd.DataFrame, task: Task) -> Predictions:
    """A fitted pipeline's predictions on raw rows."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # feature-name notes on derived frames
        if task == "classification":
            return Predictions(
                label=np.asarray(model.predict(frame)),
                probabilities=np.asarray(model.predict_proba(frame), dtype=np.float64),
            )
        return Predictions(value=np.asarray(model.predict(frame), dtype=np.float64).reshape(-1))


def score(
    task: Task,
    y_true: Array,
    predictions: Predictions,
    *,
    labels: tuple[Any, ...] | None = None,
    positive_label: Any = None,
) -> Metrics:
    """Every metric of the task for these predictions."""
    if task == "regression":
        assert predictions.value is not None
        return regression_metrics(y_true, predictions.value)
    assert predictions.label is not None
    return classification_metrics(
        y_true,
        predictions.label,
        labels=labels,
        probabilities=predictions.probabilities,
        positive_label=positive_label,
    )


@dataclass(frozen=True, slots=True)
class Evaluation:
    """A registered version scored on labelled rows it has not necessarily seen."""

    rows: int
    dropped: dict[str, int]
    """Rows left out, by reason (missing target, missing or invalid input)."""
    metrics: Metrics


def evaluate_runtime(
    runtime: Runtime,
    frame: pd.DataFrame,
    target: str,
    *,
    positive_label: Any = None,
    batch_rows: int = 5000,
) -> Evaluation:
    """Score a loaded runtime on a labelled table, by its signature's raw input columns."""
    signature = runtime.describe()
    require_column(frame, target)
    usable, dropped = _usable_rows(frame, signature, target)
    task: Task = "classification" if signature.class_labels is not None else "regression"
    truth = _typed_truth(usable[target], signature)
    batches = predict_batches(runtime, signature, usable, batch_rows)
    if task == "classification":
        predictions = Predictions(
            label=np.concatenate([b["label"] for b in batches]),
            probabilities=np.concatenate([b["probabilities"] for b in batches]),
        )
    else:
        predictions = Predictions(value=np.concatenate([b["variable"] for b in batches])[:, 0])
    labels = signature.class_labels
    if labels is not None and positive_label is not None:
        positive_label = next((c for c in labels if str(c) == str(positive_label)), None)
    metrics = score(task, truth, predictions, labels=labels, positive_label=positive_label)
    return Evaluation(len(usable), dropped, metrics)


def predict_batches(
    runtime: Runtime,
    signature: Signature,
    rows: pd.DataFrame,
    batch_rows: int = 5000,
    progress: Callable[[int], None] | None = None,
) -> list[dict[str, Array]]:
    """The runtime's outputs on ``rows``, batch by batch, each validated as a request is
    (so datetimes reach the model in its layout, missing values as it takes them);
    ``progress`` hears each batch's rows."""
    limits = InputLimits(max_rows=batch_rows, max_text_bytes=2**31)
    batches = []
    for start in range(0, len(rows), batch_rows):
        inputs = to_inputs(rows.iloc[start : start + batch_rows], signature)
        batches.append(runtime.predict(validate_inputs(signature, inputs, limits)))
        if progress is not None:
            progress(min(batch_rows, len(rows) - start))
    return batches


def _usable_rows(
    frame: pd.DataFrame, signature: Signature, target: str
) -> tuple[pd.DataFrame, dict[str, int]]:
    data = frame.copy()
    keep = data[target].notna()
    dropped = {f"missing `{target}`": int((~keep).sum())}
    for spec in signature.inputs:
        if spec.name not in data.columns:
            continue  # to_inputs names every missing column at once
        if spec.datatype != "BYTES":
            numbers = pd.to_numeric(data[spec.name], errors="coerce")
            invalid = data[spec.name].notna() & numbers.isna()
            if spec.datatype.startswith("INT"):
                invalid |= numbers.notna() & (numbers != np.round(numbers))
            dropped[f"invalid `{spec.name}`"] = int((invalid & keep).sum())
            keep &= ~invalid
            data[spec.name] = numbers
        if spec.datetime:
            invalid = data[spec.name].notna() & parse_datetimes(data[spec.name].astype(str)).isna()
            dropped[f"invalid `{spec.name}`"] = int((invalid & keep).sum())
            keep &= ~invalid
        missing = data[spec.name].isna()
        if not _takes_missing(signature, spec):
            dropped[f"missing `{spec.name}`"] = int((missing & keep).sum())
            keep &= ~missing
    usable = data[keep].reset_index(drop=True)
    if usable.empty:
        raise InvalidData(f"no usable rows: {_describe_drops(dropped)}")
    return usable, {reason: n for reason, n in dropped.items() if n}


def _takes_missing(signature: Signature, spec: TensorSpec) -> bool:
    """Whether the model imputes this input's missing values (so its rows are scored)."""
    return spec.nullable or (signature.allow_nan and spec.datatype != "BYTES")


def _typed_truth(values: pd.Series, signature: Signature) -> Array:
    labels = signature.class_labels
    if labels is None:
        return np.asarray(values, dtype=np.float64)
    if all(isinstance(label, int) for label in labels):
        numbers = pd.to_numeric(values, errors="coerce")
        if numbers.notna().all() and (numbers == np.round(numbers)).all():
            return np.asarray(numbers, dtype=np.int64)
    return np.array([str(v) for v in values], dtype=object)


def _describe_drops(dropped: dict[str, int]) -> str:
    return ", ".join(f"{n} rows with {reason}" for reason, n in dropped.items() if n)
