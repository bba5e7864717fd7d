"""Checking a request's tensors against a signature.

Every way a request can be wrong ends in :class:`~servewell.errors.InvalidInput` whose
message names the input and what was expected, so a protocol adapter can answer 400
without knowing anything of the model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from servewell.core.datatypes import is_float, is_integer, to_numpy_dtype
from servewell.core.signature import FeatureRange, Signature, TensorSpec
from servewell.errors import InvalidInput

Array = np.ndarray[Any, Any]


@dataclass(frozen=True, slots=True)
class InputLimits:
    """Bounds on one request, independent of the model."""

    max_rows: int = 10_000
    max_text_bytes: int = 100_000
    max_json_depth: int = 64


def validate_inputs(
    signature: Signature,
    inputs: Mapping[str, Any],
    limits: InputLimits | None = None,
    datatypes: Mapping[str, str] | None = None,
) -> dict[str, Array]:
    """Return the inputs as arrays of the signature's datatypes, or raise InvalidInput.
    ``datatypes``: what a protocol declared each input to be (V2); each must be the
    signature's own."""
    limits = limits or InputLimits()
    if signature.max_batch_size is not None and signature.max_batch_size < limits.max_rows:
        limits = replace(limits, max_rows=signature.max_batch_size)  # the model's own limit
    if datatypes:
        check_declared_datatypes(signature, datatypes)
    arrays = _validate_plain(signature, inputs, limits)
    if arrays is None:
        arrays = _validate_any(signature, inputs, limits)
    if signature.feature_ranges and signature.feature_names:
        _check_ranges(signature, arrays[signature.inputs[0].name])
    return arrays


def check_declared_datatypes(signature: Signature, datatypes: Mapping[str, str]) -> None:
    """Refuse an input declared with another datatype than the signature's. No conversion
    is accepted, not even a widening one: a client that declares FP16 for an FP32 input
    has a wrong idea of the model (its binary data would be read as the wrong type), and
    Triton and KServe refuse the same request."""
    for spec in signature.inputs:
        declared = datatypes.get(spec.name)
        if declared is not None and declared != spec.datatype:
            raise InvalidInput(
                f"input '{spec.name}' was sent as {declared}; the model takes "
                f'{spec.datatype} (send it with "datatype": "{spec.datatype}")',
                input_name=spec.name,
            )


def _validate_plain(
    signature: Signature, inputs: Mapping[str, Any], limits: InputLimits
) -> dict[str, Array] | None:
    """The common case, checked quickly: numeric inputs of numbers (no text, booleans or
    ragged rows), each of the right shape, finite where the model wants them finite.
    None when anything is off, and :func:`_validate_any` says exactly what; every value
    this path accepts, that one accepts too and turns into the same array."""
    specs = signature.inputs
    if len(inputs) != len(specs):
        return None
    arrays: dict[str, Array] = {}
    rows = -1
    for spec in specs:
        value = inputs.get(spec.name)
        if value is None or spec.datatype == "BYTES" or spec.datatype == "BOOL":
            return None
        if isinstance(value, np.ndarray):
            array = value
        else:
            try:
                array = np.asarray(value)
            except (ValueError, TypeError):
                return None
        wants_float = is_float(spec.datatype)
        if array.dtype.kind not in ("fiu" if wants_float else "iu"):
            return None  # text, booleans, objects; floats for integers: checked slowly
        shape = spec.shape
        if array.ndim != len(shape) or array.ndim == 0:
            return None
        for want, got in zip(shape, array.shape, strict=True):
            if want != -1 and want != got:
                return None
        if rows == -1:
            rows = array.shape[0]
            if rows == 0 or rows > limits.max_rows:
                return None
        elif array.shape[0] != rows:
            return None
        dtype = to_numpy_dtype(spec.datatype)
        if array.dtype != dtype:
            if not wants_float:
                return None  # integer range checks on the slow path
            with np.errstate(over="ignore"):  # beyond the datatype becomes inf: see below
                array = array.astype(dtype)
        if wants_float and not signature.allow_nan and not np.isfinite(array).all():
            return None  # NaN or infinity: the slow path says where
        arrays[spec.name] = array
    return arrays


def _validate_any(
    signature: Signature, inputs: Mapping[str, Any], limits: InputLimits
) -> dict[str, Array]:
    """Every check, with a message naming what is wrong."""
    expected = {spec.name for spec in signature.inputs}
    unknown = sorted(set(inputs) - expected)
    if unknown:
        raise InvalidInput(
            f"unknown input(s) {', '.join(map(repr, unknown))}; "
            f"the model takes {_names(signature)}",
            input_name=unknown[0],
        )
    arrays: dict[str, Array] = {}
    rows: int | None = None
    for spec in signature.inputs:
        if spec.name not in inputs:
            raise InvalidInput(
                f"missing input '{spec.name}'; the model takes {_names(signature)}",
                input_name=spec.name,
            )
        array = coerce_array(spec, inputs[spec.name])
        _check_shape(spec, array, limits)
        if rows is not None and array.shape[0] != rows:
            raise InvalidInput(
                f"input '{spec.name}' has {array.shape[0]} rows, other inputs have {rows}",
                input_name=spec.name,
            )
        rows = array.shape[0]
        if spec.datatype == "BYTES":
            _check_text(spec, array, limits)
        elif is_float(spec.datatype) and not signature.allow_nan:
            _check_finite(spec, array)
        arrays[spec.name] = array
    return arrays


def coerce_array(spec: TensorSpec, value: Any) -> Array:
    """Turn a list or array into an array of ``spec``'s datatype, refusing lossy casts."""
    if spec.datatype == "BYTES":
        return _to_bytes_array(spec, value)
    dtype = to_numpy_dtype(spec.datatype)
    array = _as_array(spec, value)
    if array.dtype == dtype:
        return array
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
            f"(rows of different lengths?); expected shape {_shape_text(spec.shape)}",
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


def _to_bytes_array(spec: TensorSpec, value: Any) -> Array:
    array = np.asarray(value, dtype=np.object_) if not isinstance(value, np.ndarray) else value
    if array.dtype.kind == "U":
        array = array.astype(np.object_)
    flat = array.reshape(-1)
    for index, item in enumerate(flat):
        if isinstance(item, str):
            flat[index] = item.encode("utf-8")
        elif not isinstance(item, bytes):
            raise InvalidInput(
                f"input '{spec.name}' expects text (BYTES); got {describe_value(item)} "
                f"at {_position(array.shape, index)}",
                input_name=spec.name,
            )
    return array if array.dtype == np.object_ else array.astype(np.object_)


def _raise_not_numbers(spec: TensorSpec, value: Any) -> None:
    """Name the first value that is not a number (numpy turned the whole list to text)."""
    found = _first_non_number(value, ())
    position, item = found if found is not None else ((), value)
    where = f" at {list(position)}" if position else ""
    raise InvalidInput(
        f"input '{spec.name}' expects {spec.datatype} numbers; got {describe_value(item)}{where}",
        input_name=spec.name,
    )


def _first_non_number(value: Any, position: tuple[int, ...]) -> tuple[tuple[int, ...], Any] | None:
    if isinstance(value, list | tuple | np.ndarray):
        for index, item in enumerate(value):
            found = _first_non_number(item, (*position, index))
            if found is not None:
                return found
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


def _check_shape(spec: TensorSpec, array: Array, limits: InputLimits) -> None:
    if array.ndim != len(spec.shape):
        if array.ndim == len(spec.shape) - 1 and array.ndim >= 1 and spec.shape[0] == -1:
            hint = " (a single row must still be wrapped in a list)"
        else:
            hint = ""
        raise InvalidInput(
            f"input '{spec.name}' expects shape {_shape_text(spec.shape)}, "
            f"got {_shape_text(array.shape)}{hint}",
            input_name=spec.name,
        )
    for axis, (want, got) in enumerate(zip(spec.shape, array.shape, strict=True)):
        if want != -1 and want != got:
            what = "values per row" if axis == len(spec.shape) - 1 and axis > 0 else "size"
            raise InvalidInput(
                f"input '{spec.name}' expects {want} {what} (shape {_shape_text(spec.shape)}), "
                f"got {got} (shape {_shape_text(array.shape)})",
                input_name=spec.name,
            )
    rows = array.shape[0]
    if rows == 0:
        raise InvalidInput(f"input '{spec.name}' is an empty batch", input_name=spec.name)
    if rows > limits.max_rows:
        raise InvalidInput(
            f"input '{spec.name}' has {rows} rows; at most {limits.max_rows} per request",
            input_name=spec.name,
        )


def _check_finite(spec: TensorSpec, array: Array) -> None:
    finite = np.isfinite(array)
    if finite.all():
        return
    position = tuple(int(i) for i in np.argwhere(~finite)[0])
    raise InvalidInput(
        f"input '{spec.name}' has {array[position]} at {list(position)}; "
        "NaN and infinite values are not allowed",
        input_name=spec.name,
    )


def _check_text(spec: TensorSpec, array: Array, limits: InputLimits) -> None:
    for index, item in enumerate(array.reshape(-1)):
        if len(item) > limits.max_text_bytes:
            raise InvalidInput(
                f"input '{spec.name}' item {index} is {len(item)} bytes; "
                f"at most {limits.max_text_bytes}",
                input_name=spec.name,
            )


def _check_ranges(signature: Signature, array: Array) -> None:
    low, high = signature.feature_bounds
    outside = (array < low) | (array > high)  # one vectorized pass over every column
    if not outside.any():
        return
    row, column = (int(i) for i in np.argwhere(outside.T)[0][::-1])
    name = (signature.feature_names or ())[column]
    bounds = signature.feature_ranges[name]
    raise InvalidInput(
        f"feature '{name}' is {array[row, column]} in row {row}; expected {_bounds_text(bounds)}",
        input_name=signature.inputs[0].name,
        feature=name,
    )


def _bounds_text(bounds: FeatureRange) -> str:
    if bounds.min is not None and bounds.max is not None:
        return f"between {bounds.min} and {bounds.max}"
    if bounds.min is not None:
        return f"at least {bounds.min}"
    return f"at most {bounds.max}"


def _names(signature: Signature) -> str:
    return ", ".join(
        f"'{spec.name}' {spec.datatype}{list(spec.shape)}" for spec in signature.inputs
    )


def _shape_text(shape: tuple[int, ...]) -> str:
    return (
        "["
        + ", ".join("rows" if dim == -1 and i == 0 else str(dim) for i, dim in enumerate(shape))
        + "]"
    )


def _position(shape: tuple[int, ...], flat_index: int) -> list[int]:
    return [int(i) for i in np.unravel_index(flat_index, shape)] if shape else []


def _preview(item: Any) -> str:
    text = repr(item.item() if isinstance(item, np.generic) else item)
    return text if len(text) <= 40 else text[:37] + "..."
