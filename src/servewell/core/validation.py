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

from servewell.core.coercion import coerce_array, describe_value, position, shape_text
from servewell.core.datatypes import is_float, to_numpy_dtype
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
    *,
    sent: dict[str, Array] | None = None,
) -> dict[str, Array]:
    """Return the inputs as arrays of the signature's datatypes, or raise InvalidInput.
    ``datatypes``: what a protocol declared each input to be (V2); each must be the
    signature's own. ``sent``, when given, is filled with each input as numpy read what
    was sent, before the cast to the signature's datatype (the values a JSON of the
    request holds, which the prediction log sketches), when every input took the quick
    path and was either cast (so the model never sees that array) or came as an array
    (the request's own); else it is left empty."""
    limits = limits or InputLimits()
    if signature.max_batch_size is not None and signature.max_batch_size < limits.max_rows:
        limits = replace(limits, max_rows=signature.max_batch_size)  # the model's own limit
    if datatypes:
        check_declared_datatypes(signature, datatypes)
    arrays = _validate_plain(signature, inputs, limits, sent)
    if arrays is None:
        if sent is not None:
            sent.clear()  # what the quick path read before it gave up
        arrays = _validate_any(signature, inputs, limits)
    if sent and len(sent) != len(arrays):  # not all of them: as good as none
        sent.clear()
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
    signature: Signature,
    inputs: Mapping[str, Any],
    limits: InputLimits,
    sent: dict[str, Array] | None = None,
) -> dict[str, Array] | None:
    """The common case, checked quickly: numeric inputs of numbers (no booleans or
    ragged rows), text inputs already arrays of bytes, each of the right shape, finite
    where the model wants them finite.
    None when anything is off, and :func:`_validate_any` says exactly what; every value
    this path accepts, that one accepts too and turns into the same array."""
    specs = signature.inputs
    if len(inputs) != len(specs):
        return None
    arrays: dict[str, Array] = {}
    rows = -1
    for spec in specs:
        array = _plain_input(signature, spec, inputs.get(spec.name), limits, sent)
        if array is None:
            return None
        if rows == -1:
            rows = array.shape[0]
            if rows == 0 or rows > limits.max_rows:
                return None
        elif array.shape[0] != rows:
            return None
        arrays[spec.name] = array
    return arrays


def _plain_input(
    signature: Signature,
    spec: TensorSpec,
    value: Any,
    limits: InputLimits,
    sent: dict[str, Array] | None,
) -> Array | None:
    """One input on the quick path, as the model gets it; None: the full path decides."""
    if value is None or spec.datatype == "BOOL":
        return None
    text = spec.datatype == "BYTES"
    if isinstance(value, np.ndarray):
        array = value
    elif text:
        return None
    else:
        try:
            array = np.asarray(value)
        except (ValueError, TypeError):
            return None
    wants_float = is_float(spec.datatype)
    if text:
        if not _plain_text(spec, array, limits):
            return None
    elif array.dtype.kind not in ("fiu" if wants_float else "iu"):
        return None  # text, booleans, objects; floats for integers: checked slowly
    if array.ndim != len(spec.shape) or array.ndim == 0:
        return None
    for want, got in zip(spec.shape, array.shape, strict=True):
        if want != -1 and want != got:
            return None
    if text:
        return array
    dtype = to_numpy_dtype(spec.datatype)
    if array.dtype != dtype:
        if not wants_float:
            return None  # integer range checks on the slow path
        if sent is not None:
            sent[spec.name] = array
        with np.errstate(over="ignore"):  # beyond the datatype becomes inf: see below
            array = array.astype(dtype)
    elif sent is not None and array is value:
        sent[spec.name] = array
    if wants_float and not signature.allow_nan and not _is_finite(spec, array):
        return None  # NaN or infinity: the slow path says where
    return array


def _plain_text(spec: TensorSpec, array: Array, limits: InputLimits) -> bool:
    """A text input as a codec makes it (chat's ``messages``): an array of objects, each
    ``bytes`` within ``validation.max_text_bytes``, no missing values or datetimes."""
    if spec.nullable or spec.datetime or array.dtype != np.object_:
        return False
    most = limits.max_text_bytes
    return all(type(item) is bytes and len(item) <= most for item in array.reshape(-1).tolist())


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
            if spec.datetime:
                array = _canonical_datetimes(spec, array)
        elif is_float(spec.datatype) and not signature.allow_nan:
            _check_finite(spec, array)
        arrays[spec.name] = array
    return arrays


def _check_shape(spec: TensorSpec, array: Array, limits: InputLimits) -> None:
    if array.ndim != len(spec.shape):
        if array.ndim == len(spec.shape) - 1 and array.ndim >= 1 and spec.shape[0] == -1:
            hint = " (a single row must still be wrapped in a list)"
        else:
            hint = ""
        raise InvalidInput(
            f"input '{spec.name}' expects shape {shape_text(spec.shape)}, "
            f"got {shape_text(array.shape)}{hint}",
            input_name=spec.name,
        )
    for axis, (want, got) in enumerate(zip(spec.shape, array.shape, strict=True)):
        if want != -1 and want != got:
            what = "values per row" if axis == len(spec.shape) - 1 and axis > 0 else "size"
            raise InvalidInput(
                f"input '{spec.name}' expects {want} {what} (shape {shape_text(spec.shape)}), "
                f"got {got} (shape {shape_text(array.shape)})",
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


def _is_finite(spec: TensorSpec, array: Array) -> bool:
    """No infinity, and no NaN unless the input is nullable (NaN is its missing value)."""
    if spec.nullable:
        return not np.isinf(array).any()
    return bool(np.isfinite(array).all())


def _check_finite(spec: TensorSpec, array: Array) -> None:
    if _is_finite(spec, array):
        return
    wrong = np.isinf(array) if spec.nullable else ~np.isfinite(array)
    position = tuple(int(i) for i in np.argwhere(wrong)[0])
    allowed = "infinite values are" if spec.nullable else "NaN and infinite values are"
    raise InvalidInput(
        f"input '{spec.name}' has {array[position]} at {list(position)}; {allowed} not allowed",
        input_name=spec.name,
    )


def _check_text(spec: TensorSpec, array: Array, limits: InputLimits) -> None:
    for index, item in enumerate(array.reshape(-1)):
        if item is not None and len(item) > limits.max_text_bytes:
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


def _canonical_datetimes(spec: TensorSpec, array: Array) -> Array:
    # pandas parses ISO 8601: imported only for a model that takes datetimes.
    from servewell.core.datetimes import canonical_datetimes

    canonical, bad = canonical_datetimes(array)
    if bad is not None:
        item = array.reshape(-1)[bad]
        item = item.decode("utf-8", errors="replace") if isinstance(item, bytes) else item
        raise InvalidInput(
            f"input '{spec.name}' expects ISO 8601 datetimes (such as 2024-03-01T12:30:00); "
            f"got {describe_value(item)} at {position(array.shape, bad)}",
            input_name=spec.name,
        )
    return canonical
