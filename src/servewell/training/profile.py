"""The reference profile a model is compared with: a table of its inputs and the
predictions made on them, as :mod:`servewell.stats.profile` summarises them (what drift
is judged by). A trained model's is of its training rows (:func:`reference_profile`);
one registered without training gets one from a table its owner gives
(``servewell profile``), built by the same :func:`table_profile`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

import pandas as pd

from servewell.core.task import Task
from servewell.stats import build_profile, numeric_profile
from servewell.stats.profile import sample_indices, sample_values
from servewell.training.data import Schema
from servewell.training.evaluate import Predictions
from servewell.training.features import FeaturePlan

ColumnKind = Literal["numeric", "categorical", "datetime"]


def reference_profile(
    x_train: pd.DataFrame,
    schema: Schema,
    plan: FeaturePlan,
    predictions: Predictions,
    task: Task,
) -> dict[str, Any]:
    """Every raw input column of the training rows, and the predictions on them."""
    kinds: dict[str, ColumnKind] = {}
    for name in plan.inputs:
        kind = schema.kind_of(name)
        kinds[name] = kind if kind in ("numeric", "datetime") else "categorical"
    return table_profile(x_train, kinds, predictions, task)


def table_profile(
    frame: pd.DataFrame,
    kinds: Mapping[str, ColumnKind],
    predictions: Predictions | None,
    task: Task | None,
) -> dict[str, Any]:
    """The columns ``kinds`` names, the predictions (when there are), and a binary
    classifier's scores, with a sample of the rows (datetimes as text)."""
    columns = {name: frame[name].to_numpy() for name in kinds}
    datetimes = [name for name, kind in kinds.items() if kind == "datetime"]
    for name in datetimes:  # live timestamps always drift; keep their range only
        columns.pop(name)
    profile = build_profile(
        columns,
        {name: "numeric" if kinds[name] == "numeric" else "categorical" for name in columns},
        predictions=None if predictions is None else predictions.to_outputs(),
        prediction_kind="categorical" if task == "classification" else "numeric",
    )
    chosen = sample_indices(len(frame))
    for name in datetimes:
        values = frame[name].dropna()
        profile["features"][name] = {
            "kind": "datetime",
            "count": len(frame),
            "missing": int(frame[name].isna().sum()),
            "min": str(values.min()),
            "max": str(values.max()),
        }
        text = frame[name].astype("string").to_numpy(dtype=object, na_value=None)
        profile["sample"]["features"][name] = sample_values(text, chosen)
    probabilities = None if predictions is None else predictions.probabilities
    if probabilities is not None and probabilities.shape[1] == 2:
        profile["score"] = numeric_profile(probabilities[:, 1])
    return profile


def compact_json(data: Any) -> bytes:
    """A profile as stored: it holds thousands of numbers per column (its drift
    sketches and sample), so one line, no indentation."""
    return json.dumps(data, separators=(",", ":"), default=str).encode("utf-8")
