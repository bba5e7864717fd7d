"""Turning request values (JSON lists, arrays) into arrays of a tensor's datatype.

Lossy casts are refused (fractions for integers, values beyond a datatype's range, text
where numbers belong), and every refusal is an
:class:`~servewell.errors.InvalidInput` naming the input, the value and where it is.
A nullable input takes missing values: null (and NaN) for floats, null, ``""`` or NaN
for text, which becomes None.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from servewell.core.datatypes import is_float, is_integer, to_numpy_dtype
from servewell.core.signature import TensorSpec
from servewell.errors import InvalidInput

Array = np.ndarray[Any, Any]


def coerce_array(spec: TensorSpec, value: Any) -> Array:
    """Turn a list or array into an array of ``spec``'s datatype, refusing lossy casts."""
    if spec.datatype == "BYTES":
        return _to_bytes_array(spec, value)
    dtype = to_numpy_dtype(spec.datatype)
    array = _as_array(spec, value)
    if array.dtype == dtype:
        return array
    kind = array.dtype.kind
    if kind == "O" and spec.nullable and is_float(spec.datatype):
        array = _nulls_as_nan(spec, value, dtype)
        kind = array.dtype.kind
    if kind in ("U", "S", "O"):
        _raise_not_numbers(spec, value)
    if kind == "b" and spec.datatype != "BOOL":
        raise InvalidInput(
            f"input '{spec.name}' expects {spec.datatype} numbers, got booleans",
            input_name=spec.name,
        )
    if spec.datatype == "BOOL":
        if kind != "b" and not np.isin(array, (0, 1)).all():
            raise InvalidInput(
                f"input '{spec.name}' expects BOOL values (true/false), got numbers",
                input_name=spec.name,
            )
        return array.astype(np.bool_)
    if is_integer(spec.datatype):
        if kind == "f" and not isinstance(value, np.ndarray):
            return _exact_integers(spec, value, dtype)
        return _to_integers(spec, array, dtype)
    with np.errstate(over="ignore"):  # beyond the datatype becomes inf: refused as such
        return array.astype(dtype)


def _as_array(spec: TensorSpec, value: Any) -> Array:
    if isinstance(value, np.ndarray):
        return value
    try:
        return np.asarray(value)
    except (ValueError, TypeError) as exc:
        raise InvalidInput(
            f"input '{spec.name}' is not a rectangular array "
            f"(rows of different lengths?); expected shape {shape_text(spec.shape)}",
            input_name=spec.name,
        ) from exc


def _to_integers(spec: TensorSpec, array: Array, dtype: np.dtype[Any]) -> Array:
    if array.dtype.kind == "f" and not _is_integral(array):
        raise InvalidInput(
            f"input '{spec.name}' expects {spec.datatype} integers, "
            "got numbers with a fraction (or NaN/Inf)",
            input_name=spec.name,
        )
    info = np.iinfo(dtype)
    if array.size and (array.min() < info.min or array.max() > info.max):
        raise InvalidInput(
            f"input '{spec.name}' has values outside the {spec.datatype} range "
            f"[{info.min}, {info.max}]",
            input_name=spec.name,
        )
    return array.astype(dtype)


def _exact_integers(spec: TensorSpec, value: Any, dtype: np.dtype[Any]) -> Array:
    """Integers from JSON lists that numpy read as floats (mixed with floats, or beyond
    int64 such as large UINT64 values): converted one by one, so nothing is rounded."""
    items = np.array(value, dtype=np.object_)
    for item in items.flat:
        if isinstance(item, float) and not item.is_integer():
            raise InvalidInput(
                f"input '{spec.name}' expects {spec.datatype} integers, "
                f"got {item} (a fraction, NaN or infinity)",
                input_name=spec.name,
            )
    try:
        return np.array([int(item) for item in items.flat], dtype=dtype).reshape(items.shape)
    except OverflowError:
        info = np.iinfo(dtype)
        raise InvalidInput(
            f"input '{spec.name}' has values outside the {spec.datatype} range "
            f"[{info.min}, {info.max}]",
            input_name=spec.name,
        ) from None


def _is_integral(array: Array) -> bool:
    return bool(np.isfinite(array).all() and (array == np.round(array)).all())


def _nulls_as_nan(spec: TensorSpec, value: Any, dtype: np.dtype[Any]) -> Array:
    """A nullable float input's values, with null as NaN (text stays refused: the
    caller names it)."""
    found = _first_non_number(value, (), allow_null=True)
    if found is not None:
        return np.asarray(value, dtype=np.object_)
    with np.errstate(over="ignore"):
        return np.array(value, dtype=dtype)  # numpy reads None as NaN


def _to_bytes_array(spec: TensorSpec, value: Any) -> Array:
    array = np.asarray(value, dtype=np.object_) if not isinstance(value, np.ndarray) else value
    if array.dtype.kind == "U":
        array = array.astype(np.object_)
    flat = array.reshape(-1)
    for index, item in enumerate(flat):
        if spec.nullable and _is_missing_text(item):
            flat[index] = None
        elif isinstance(item, str):
            flat[index] = item.encode("utf-8")
        elif not isinstance(item, bytes):
            raise InvalidInput(
                f"input '{spec.name}' expects text (BYTES); got {describe_value(item)} "
                f"at {position(array.shape, index)}",
                input_name=spec.name,
            )
    return array if array.dtype == np.object_ else array.astype(np.object_)


def _is_missing_text(item: Any) -> bool:
    """How a missing value of a nullable text input arrives: JSON null, an empty string
    (an empty CSV cell, Triton's binary BYTES), or NaN (a table's missing cell)."""
    if item is None or item == "" or item == b"":
        return True
    return isinstance(item, float) and math.isnan(item)


def _raise_not_numbers(spec: TensorSpec, value: Any) -> None:
    """Name the first value that is not a number (numpy turned the whole list to text)."""
    found = _first_non_number(value, (), allow_null=spec.nullable and is_float(spec.datatype))
    position, item = found if found is not None else ((), value)
    where = f" at {list(position)}" if position else ""
    raise InvalidInput(
        f"input '{spec.name}' expects {spec.datatype} numbers; got {describe_value(item)}{where}",
        input_name=spec.name,
    )


def _first_non_number(
    value: Any, position: tuple[int, ...], allow_null: bool = False
) -> tuple[tuple[int, ...], Any] | None:
    if isinstance(value, list | tuple | np.ndarray):
        for index, item in enumerate(value):
            found = _first_non_number(item, (*position, index), allow_null)
            if found is not None:
                return found
        return None
    if allow_null and value is None:
        return None
    return None if _is_number(value) else (position, value)


def _is_number(item: Any) -> bool:
    return isinstance(item, int | float | np.number) and not isinstance(item, bool | np.bool_)


def describe_value(item: Any) -> str:
    """A JSON value as a message names it: ``null``, ``true``, ``text 'abc'``,
    ``an object``, ``a list``, ``the number 3``."""
    if item is None:
        return "null"
    if isinstance(item, bool | np.bool_):
        return "true" if item else "false"
    if isinstance(item, str | np.str_ | bytes):
        return f"text {_preview(item)}"
    if isinstance(item, dict):
        return "an object"
    if isinstance(item, list | tuple):
        return "a list"
    if _is_number(item):
        return f"the number {_preview(item)}"
    return f"a {type(item).__name__}"


def position(shape: tuple[int, ...], flat_index: int) -> list[int]:
    return [int(i) for i in np.unravel_index(flat_index, shape)] if shape else []


def _preview(item: Any) -> str:
    text = repr(item.item() if isinstance(item, np.generic) else item)
    return text if len(text) <= 40 else text[:37] + "..."


def shape_text(shape: tuple[int, ...]) -> str:
    return (
        "["
        + ", ".join("rows" if dim == -1 and i == 0 else str(dim) for i, dim in enumerate(shape))
        + "]"
    )
