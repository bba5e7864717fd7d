"""Tabular rows and columns to a model's named inputs, and outputs back to predictions.

The friendly REST API speaks rows (``instances``) or columns (``inputs``); models take
named tensors. Two shapes of signature are understood:

* one 2-D input (``input``, ``[-1, n]``) with ``feature_names``: a row is a list of
  ``n`` numbers in feature order, or an object keyed by feature name (reordered here);
* *columnar*: one input per raw column, each ``[-1]`` or ``[-1, 1]``, named after the
  column: a row is an object keyed by column name (or a list in input order).

Pure functions: shapes and types are checked later, by validation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from servewell.core.signature import Signature, TensorSpec
from servewell.errors import InvalidInput

Array = np.ndarray[Any, Any]


def inputs_from_instances(signature: Signature, instances: Any) -> dict[str, Any]:
    """Named inputs from a list of rows."""
    if not isinstance(instances, list):
        raise InvalidInput(f"'instances' must be a list of rows, got {_json_type(instances)}")
    if not instances:
        raise InvalidInput("'instances' is an empty batch; send at least one row")
    if isinstance(instances[0], dict):
        if _is_single_matrix(signature):
            return {signature.inputs[0].name: _rows_from_objects(signature, instances)}
        return _columns_from_objects(signature, instances)
    if len(signature.inputs) == 1:
        return {signature.inputs[0].name: instances}
    return _columns_from_lists(signature, instances)


def inputs_from_columns(signature: Signature, columns: Any) -> dict[str, Any]:
    """Named inputs from TF-Serving's columnar ``inputs``: a mapping or, for a model of
    one input, its values."""
    if isinstance(columns, list):
        if len(signature.inputs) != 1:
            raise InvalidInput(
                "'inputs' must be an object keyed by input name for a model of "
                f"{len(signature.inputs)} inputs: {_input_names(signature)}"
            )
        return {signature.inputs[0].name: columns}
    if not isinstance(columns, dict):
        raise InvalidInput(f"'inputs' must be an object or a list, got {_json_type(columns)}")
    input_names = {spec.name for spec in signature.inputs}
    if _is_single_matrix(signature) and not set(columns) & input_names:
        return {signature.inputs[0].name: _rows_from_feature_columns(signature, columns)}
    return {name: _as_column(_spec(signature, name), values) for name, values in columns.items()}


def to_predictions(signature: Signature, outputs: Mapping[str, Array]) -> dict[str, Any]:
    """The REST answer: ``predictions`` (labels for a classifier), plus ``probabilities``
    and ``classes`` when the model gives them. Values stay numpy (see :func:`to_plain`)."""
    if signature.class_labels is not None and "label" in outputs:
        answer: dict[str, Any] = {"predictions": to_plain(outputs["label"])}
        if "probabilities" in outputs:
            answer["probabilities"] = to_plain(outputs["probabilities"])
            answer["classes"] = list(signature.class_labels)
        return answer
    if len(outputs) == 1:
        (values,) = outputs.values()
        if values.ndim == 2 and values.shape[1] == 1:
            values = values.reshape(-1)
        return {"predictions": to_plain(values)}
    rows = len(next(iter(outputs.values())))
    plain = {name: to_plain(values) for name, values in outputs.items()}
    return {"predictions": [{name: plain[name][i] for name in plain} for i in range(rows)]}


def _is_single_matrix(signature: Signature) -> bool:
    return len(signature.inputs) == 1 and signature.feature_names is not None


def _rows_from_objects(signature: Signature, instances: list[Any]) -> list[list[Any]]:
    names = signature.feature_names or ()
    expected = set(names)
    rows = []
    for index, row in enumerate(instances):
        if not isinstance(row, dict):
            raise InvalidInput(
                f"row {index} is {_json_type(row)}; rows must all be objects or all be lists"
            )
        if row.keys() != expected:
            raise _feature_mismatch(f"row {index}", row, names)
        rows.append([row[name] for name in names])
    return rows


def _feature_mismatch(where: str, row: dict[str, Any], names: tuple[str, ...]) -> InvalidInput:
    missing = [name for name in names if name not in row]
    unknown = sorted(set(row) - set(names))
    parts = []
    if missing:
        parts.append(f"missing {len(missing)} feature(s): {_quoted(missing)}")
    if unknown:
        parts.append(f"unknown feature(s): {_quoted(unknown)}")
    return InvalidInput(f"{where}: {'; '.join(parts)} (the model takes {len(names)} features)")


def _rows_from_feature_columns(signature: Signature, columns: dict[str, Any]) -> list[Any]:
    names = signature.feature_names or ()
    if columns.keys() != set(names):
        raise _feature_mismatch("'inputs'", columns, names)
    values = [columns[name] for name in names]
    if not all(isinstance(column, list) for column in values):
        raise InvalidInput("'inputs': each feature must be a list of values, one per row")
    lengths = {len(column) for column in values}
    if len(lengths) != 1:
        raise InvalidInput("'inputs': the feature columns have different lengths")
    return [list(row) for row in zip(*values, strict=True)]


def _columns_from_objects(signature: Signature, instances: list[Any]) -> dict[str, Any]:
    expected = {spec.name for spec in signature.inputs}
    columns: dict[str, list[Any]] = {spec.name: [] for spec in signature.inputs}
    for index, row in enumerate(instances):
        if not isinstance(row, dict):
            raise InvalidInput(
                f"row {index} is {_json_type(row)}; rows must all be objects or all be lists"
            )
        if row.keys() != expected:
            missing = sorted(expected - set(row))
            unknown = sorted(set(row) - expected)
            parts = [f"missing column(s): {_quoted(missing)}"] if missing else []
            if unknown:
                parts.append(f"unknown column(s): {_quoted(unknown)}")
            raise InvalidInput(f"row {index}: {'; '.join(parts)}", row=index)
        for name, column in columns.items():
            column.append(row[name])
    return {name: _as_column(_spec(signature, name), values) for name, values in columns.items()}


def _columns_from_lists(signature: Signature, instances: list[Any]) -> dict[str, Any]:
    width = len(signature.inputs)
    for index, row in enumerate(instances):
        if not isinstance(row, list) or len(row) != width:
            raise InvalidInput(
                f"row {index} must be a list of {width} values, one per input "
                f"({_input_names(signature)}), or an object keyed by input name",
                row=index,
            )
    return {
        spec.name: _as_column(spec, [row[i] for row in instances])
        for i, spec in enumerate(signature.inputs)
    }


def _as_column(spec: TensorSpec, values: Any) -> Any:
    """A column's values shaped as its input: ``[-1, 1]`` wraps each value in a list."""
    if (
        len(spec.shape) == 2
        and spec.shape[1] == 1
        and isinstance(values, list)
        and values
        and not isinstance(values[0], list)
    ):
        return [[value] for value in values]
    return values


def _spec(signature: Signature, name: str) -> TensorSpec:
    try:
        return signature.input(name)
    except KeyError:
        raise InvalidInput(
            f"unknown input '{name}'; the model takes {_input_names(signature)}",
            input_name=name,
        ) from None


def to_plain(values: Array) -> Any:
    """Values orjson writes as JSON (with ``OPT_SERIALIZE_NUMPY``), whatever array a
    model returned: text as ``str``; numbers and booleans as a C-contiguous array of
    numpy's canonical dtype for their kind and size. orjson refuses non-contiguous
    arrays (a transposed or sliced output) and the scalars of aliased dtypes: ONNX
    Runtime's INT64 arrays are ``longlong``, and indexing one gives a ``numpy.longlong``
    that orjson cannot write, while ``int64`` (the same bits) it can."""
    dtype = values.dtype
    if dtype.type in _CANONICAL_TYPES and dtype.isnative and values.flags.c_contiguous:
        return values if values.ndim else values[()]  # the usual case, as it is
    kind = dtype.kind
    if kind in "OUS":
        return [_plain_item(item) for item in values.tolist()]
    if kind not in "biuf":
        raise TypeError(f"a model output of dtype {values.dtype} has no JSON form")
    native = np.ascontiguousarray(values, dtype=values.dtype.newbyteorder("="))
    canonical = native.view(np.dtype(f"{kind}{values.dtype.itemsize}"))  # same bytes
    return canonical[0] if values.ndim == 0 else canonical  # (a 0-d array became 1-d)


#: numpy's canonical scalar type for each kind and size (``int64``, not ``longlong``).
_CANONICAL_TYPES = frozenset(
    np.dtype(f"{kind}{size}").type
    for kind, sizes in (("b", (1,)), ("i", (1, 2, 4, 8)), ("u", (1, 2, 4, 8)), ("f", (2, 4, 8)))
    for size in sizes
)


def _plain_item(item: Any) -> Any:
    if isinstance(item, bytes):
        return item.decode("utf-8", errors="replace")
    if isinstance(item, list):
        return [_plain_item(value) for value in item]
    if isinstance(item, np.generic):  # a number inside an object array
        return item.item()
    return item


def _input_names(signature: Signature) -> str:
    return _quoted([spec.name for spec in signature.inputs])


def _quoted(names: list[str]) -> str:
    shown = ", ".join(f"'{name}'" for name in names[:5])
    return shown + (f" and {len(names) - 5} more" if len(names) > 5 else "")


def _json_type(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    return "a number" if isinstance(value, int | float) else type(value).__name__
