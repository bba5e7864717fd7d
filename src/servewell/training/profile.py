"""The reference profile a trained model is registered with: its training inputs and
predictions, as :mod:`servewell.stats.profile` summarises them (what drift is judged by)."""

from __future__ import annotations

from typing import Any, Literal

import pandas as pd

from servewell.core.task import Task
from servewell.stats import build_profile, numeric_profile
from servewell.stats.profile import sample_indices, sample_values
from servewell.training.data import Schema
from servewell.training.evaluate import Predictions
from servewell.training.features import FeaturePlan


def reference_profile(
    x_train: pd.DataFrame,
    schema: Schema,
    plan: FeaturePlan,
    predictions: Predictions,
    task: Task,
) -> dict[str, Any]:
    """Every raw input column, the predictions, and a binary classifier's scores, with a
    sample of the training rows (datetimes as text)."""
    columns = {name: x_train[name].to_numpy() for name in plan.inputs}
    kinds: dict[str, Literal["numeric", "categorical"]] = {
        name: "numeric" if schema.kind_of(name) == "numeric" else "categorical"
        for name in plan.inputs
    }
    datetimes = [name for name in plan.inputs if schema.kind_of(name) == "datetime"]
    for name in datetimes:  # live timestamps always drift; keep their range only
        columns.pop(name)
    profile = build_profile(
        columns,
        kinds,
        predictions=predictions.to_outputs(),
        prediction_kind="categorical" if task == "classification" else "numeric",
    )
    chosen = sample_indices(len(x_train))
    for name in datetimes:
        values = x_train[name].dropna()
        profile["features"][name] = {
            "kind": "datetime",
            "count": len(x_train),
            "missing": int(x_train[name].isna().sum()),
            "min": str(values.min()),
            "max": str(values.max()),
        }
        text = x_train[name].astype("string").to_numpy(dtype=object, na_value=None)
        profile["sample"]["features"][name] = sample_values(text, chosen)
    if predictions.probabilities is not None and predictions.probabilities.shape[1] == 2:
        profile["score"] = numeric_profile(predictions.probabilities[:, 1])
    return profile
