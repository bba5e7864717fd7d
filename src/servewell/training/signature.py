"""The signature a trained pipeline is registered with: its raw input columns.

Clients send the columns they have (numbers, category names, ISO 8601 datetimes) and the
model's own steps derive, scale and encode them. When every raw column is a number, the
signature is one FP32 matrix ``input [rows, columns]`` with ``feature_names`` (one tensor
per request: cheapest to validate and batch, and what V2 clients expect); otherwise it is
*columnar*, one ``[-1]`` input per column.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from servewell.core.signature import Datatype, Signature, TensorSpec
from servewell.errors import InvalidData

Array = np.ndarray[Any, Any]

#: The one input of a signature whose raw columns are all numbers.
MATRIX_INPUT = "input"


def columnar_signature(
    frame: pd.DataFrame,
    inputs: Sequence[str],
    *,
    labels: Sequence[Any] | None,
    nullable: bool,
    datetimes: Sequence[str] = (),
) -> Signature:
    """A matrix of numbers, or one ``[-1]`` input per raw column; classifier or regressor
    outputs. ``nullable``: the model imputes missing values, so every input takes them
    (numbers then travel as FP64, whose NaN is a missing value); ``datetimes``: the
    columns holding ISO 8601 text."""
    datatypes = [_datatype(frame[name], nullable) for name in inputs]
    matrix = all(datatype != "BYTES" for datatype in datatypes)
    specs = (
        (
            TensorSpec(
                name=MATRIX_INPUT, datatype="FP32", shape=(-1, len(inputs)), nullable=nullable
            ),
        )
        if matrix
        else tuple(
            TensorSpec(
                name=name,
                datatype=datatype,
                shape=(-1,),
                nullable=nullable,
                datetime=name in datetimes,
            )
            for name, datatype in zip(inputs, datatypes, strict=True)
        )
    )
    feature_names = tuple(inputs) if matrix else None
    if labels is None:
        outputs: tuple[TensorSpec, ...] = (
            TensorSpec(name="variable", datatype="FP32", shape=(-1, 1)),
        )
        return Signature(inputs=specs, outputs=outputs, feature_names=feature_names)
    plain = tuple(int(v) if isinstance(v, int | np.integer) else str(v) for v in labels)
    label_type: Datatype = "INT64" if all(isinstance(v, int) for v in plain) else "BYTES"
    outputs = (
        TensorSpec(name="label", datatype=label_type, shape=(-1,)),
        TensorSpec(name="probabilities", datatype="FP32", shape=(-1, len(plain))),
    )
    return Signature(inputs=specs, outputs=outputs, feature_names=feature_names, class_labels=plain)


def _matrix_input(width: int, nullable: bool) -> TensorSpec:
    return TensorSpec(name=MATRIX_INPUT, datatype="FP32", shape=(-1, width), nullable=nullable)


def _require_columns(frame: pd.DataFrame, names: Sequence[str]) -> None:
    missing = [name for name in names if name not in frame.columns]
    if missing:
        raise InvalidData(
            f"the data lacks the model's input column(s) {', '.join(map(repr, missing))}",
            columns=missing,
        )


def _datatype(column: pd.Series, nullable: bool) -> Datatype:
    kind = column.dtype.kind
    if kind in "iub":
        return "FP64" if nullable else "INT64"
    if kind == "f":
        return "FP64"
    return "BYTES"


def to_inputs(frame: pd.DataFrame, signature: Signature) -> dict[str, Array]:
    """Rows of a table as the named arrays a runtime takes (text as UTF-8 bytes)."""
    if signature.feature_names is not None:
        _require_columns(frame, signature.feature_names)
        matrix = frame[list(signature.feature_names)].to_numpy(dtype=np.float32)
        return {signature.inputs[0].name: matrix}
    _require_columns(frame, [spec.name for spec in signature.inputs])
    arrays: dict[str, Array] = {}
    for spec in signature.inputs:
        values = frame[spec.name]
        if spec.datatype == "BYTES":
            arrays[spec.name] = text_column(values)
        elif spec.datatype == "INT64":
            arrays[spec.name] = values.to_numpy(dtype=np.int64)
        else:
            arrays[spec.name] = values.to_numpy(dtype=np.float64)
        if len(spec.shape) == 2 and spec.shape[1] == 1:  # a column as a [rows, 1] tensor
            arrays[spec.name] = arrays[spec.name].reshape(-1, 1)
    return arrays


def text_column(values: pd.Series) -> Array:
    """A column as UTF-8 bytes; a missing value (NaN, None) as None, as validation
    passes a nullable input's missing value on."""
    return np.array(
        [None if _is_missing(v) else str(v).encode("utf-8") for v in values], dtype=object
    )


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value) or value is pd.NA
