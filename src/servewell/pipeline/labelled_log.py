"""A model's logged predictions that have a feedback label, as rows of a table: its raw
input columns and the target, what ``servewell retrain --with-feedback`` adds to the
training rows.

Only a row whose inputs were logged in full can be learnt from: a model whose
``models.<name>.monitoring.log_inputs`` is ``hash`` or ``none`` (or unset, for a text
input: hashed by default) gives none; a row with an input missing, or a number input
holding anything but a number (logged as a hash under an earlier setting), is skipped.
A label names one request, so a request of several rows is skipped too, as is a
response-cache hit (its inputs are not logged). Each reason is counted.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from servewell.core.feedback import comparable_label
from servewell.core.signature import Signature
from servewell.registry import RegistryAccess
from servewell.registry.prediction_store import open_prediction_store
from servewell.registry.predictions import LoggedPrediction
from servewell.runtime.sklearn import INPUT_NAME, is_columnar

#: Why a labelled row was not joined, as the report says it.
NOT_FULL = "inputs not logged in full"
SEVERAL_ROWS = "several rows in one request (a label names one)"
CACHED = "a response-cache hit (no inputs logged)"


@dataclass(frozen=True)
class LabelledLog:
    """The joined rows, and how many labelled rows were skipped, by reason."""

    frame: pd.DataFrame
    skipped: dict[str, int] = field(default_factory=dict)

    @property
    def joined(self) -> int:
        return len(self.frame)

    def to_dict(self) -> dict[str, Any]:
        return {"joined": self.joined, "skipped": self.skipped}

    def lines(self) -> list[str]:
        text = [f"joined {self.joined} logged predictions with their labels"]
        return text + [f"skipped {n}: {reason}" for reason, n in self.skipped.items()]


def read_labelled_log(
    access: RegistryAccess, name: str, signature: Signature, target: str, target_like: Any
) -> LabelledLog:
    """``name``'s labelled logged rows, read with ``signature``'s inputs, the label as
    ``target``, as the kind of value ``target_like`` is (one of the new data's targets);
    page by page (the log may hold millions of rows)."""
    columns = input_columns(signature)
    not_full = _not_logged_in_full(access, name, signature)
    rows: list[list[Any]] = []
    skipped: Counter[str] = Counter()
    for page in open_prediction_store(access).scan(name):
        for logged in page:
            if logged.label is None:
                continue
            if not_full is not None:
                skipped[not_full] += 1
                continue
            label = comparable_label(logged.label, target_like)
            if label is None:
                skipped["its label is not a value the target column holds"] += 1
                continue
            row, reason = _row_of(logged, signature, columns)
            if row is None:
                skipped[reason] += 1
            else:
                rows.append([*row, label])
    frame = pd.DataFrame(rows, columns=[*columns, target])
    return LabelledLog(frame, dict(skipped))


def input_columns(signature: Signature) -> list[str]:
    """The raw columns a version takes: one per input, or its matrix's feature names."""
    if is_columnar(signature):
        return [spec.name for spec in signature.inputs]
    return list(signature.feature_names or ())


def _not_logged_in_full(access: RegistryAccess, name: str, signature: Signature) -> str | None:
    """Why no row can be used (an input that the setting hashes or leaves out), or None."""
    chosen = access.settings.model(name).monitoring.log_inputs
    for spec in signature.inputs:
        policy = chosen or ("hash" if spec.datatype == "BYTES" else "full")
        if policy != "full":
            setting = f"models.{name}.monitoring.log_inputs"
            return f"{NOT_FULL} ('{spec.name}' is logged as '{policy}': {setting})"
    return None


def _row_of(
    logged: LoggedPrediction, signature: Signature, columns: list[str]
) -> tuple[list[Any] | None, str]:
    """One request's one row of raw values, or None and why not."""
    inputs = logged.inputs
    if logged.cached:
        return None, CACHED
    if not isinstance(inputs, Mapping):
        return None, NOT_FULL
    if is_columnar(signature):
        values = [_flat(inputs.get(name)) for name in columns]
        if any(v is None for v in values):
            return None, NOT_FULL
        if any(len(v) != 1 for v in values if v is not None):
            return None, SEVERAL_ROWS
        row = [v[0] for v in values if v is not None]
    else:
        matrix = inputs.get(INPUT_NAME)
        if not isinstance(matrix, list) or not matrix:
            return None, NOT_FULL
        if len(matrix) != 1:
            return None, SEVERAL_ROWS
        row = matrix[0] if isinstance(matrix[0], list) else []
        if len(row) != len(columns):
            return None, NOT_FULL
    numbers = {spec.name for spec in signature.inputs if spec.datatype != "BYTES"}
    for name, value in zip(columns, row, strict=True):
        if (name in numbers or not is_columnar(signature)) and not _is_number(value):
            return None, NOT_FULL  # a hash where a number was taken
    return row, ""


def _flat(values: Any) -> list[Any] | None:
    if values is None:
        return None
    flat: list[Any] = np.asarray(values, dtype=object).reshape(-1).tolist()
    return flat


def _is_number(value: Any) -> bool:
    return value is None or isinstance(value, int | float)
