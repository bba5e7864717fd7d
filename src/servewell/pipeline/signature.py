"""The signature a trained pipeline is registered with: its raw input columns.

Clients send the columns they have (numbers, category names, ISO 8601 datetimes), one
input per column, and the model's own steps derive, scale and encode them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from servewell.core.signature import Datatype, Signature, TensorSpec
from servewell.errors import InvalidData

Array = np.ndarray[Any, Any]


def columnar_signature(
    frame: pd.DataFrame,
    inputs: Sequence[str],
    *,
    labels: Sequence[Any] | None,
    allow_nan: bool,
) -> Signature:
    """One ``[-1]`` input per raw column; classifier or regressor outputs."""
    specs = tuple(
        TensorSpec(name=name, datatype=_datatype(frame[name]), shape=(-1,)) for name in inputs
    )
    if labels is None:
        outputs: tuple[TensorSpec, ...] = (
            TensorSpec(name="variable", datatype="FP32", shape=(-1, 1)),
        )
        return Signature(inputs=specs, outputs=outputs, allow_nan=allow_nan)
    plain = tuple(int(v) if isinstance(v, int | np.integer) else str(v) for v in labels)
    label_type: Datatype = "INT64" if all(isinstance(v, int) for v in plain) else "BYTES"
    outputs = (
        TensorSpec(name="label", datatype=label_type, shape=(-1,)),
        TensorSpec(name="probabilities", datatype="FP32", shape=(-1, len(plain))),
    )
    return Signature(inputs=specs, outputs=outputs, class_labels=plain, allow_nan=allow_nan)


def _datatype(column: pd.Series) -> Datatype:
    kind = column.dtype.kind
    if kind in "iub":
        return "INT64"
    if kind == "f":
        return "FP64"
    return "BYTES"


def to_inputs(frame: pd.DataFrame, signature: Signature) -> dict[str, Array]:
    """Rows of a table as the named arrays a runtime takes (text as UTF-8 bytes)."""
    missing = [spec.name for spec in signature.inputs if spec.name not in frame.columns]
    if missing:
        raise InvalidData(
            f"the data lacks the model's input column(s) {', '.join(map(repr, missing))}",
            columns=missing,
        )
    arrays: dict[str, Array] = {}
    for spec in signature.inputs:
        values = frame[spec.name]
        if spec.datatype == "BYTES":
            arrays[spec.name] = np.array([str(v).encode("utf-8") for v in values], dtype=object)
        elif spec.datatype == "INT64":
            arrays[spec.name] = values.to_numpy(dtype=np.int64)
        else:
            arrays[spec.name] = values.to_numpy(dtype=np.float64)
    return arrays
