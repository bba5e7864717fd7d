"""Tensors on the wire: Open Inference Protocol (KServe V2) JSON and Triton's binary data.

Pure functions, no I/O. A V2 JSON tensor is ``{"name", "datatype", "shape", "data"}``
with ``data`` flat (row-major) or nested. With Triton's *binary tensor data extension*
a tensor's bytes follow the JSON header in the body instead: fixed-size types as their
little-endian values back to back (BOOL one byte each), BYTES as each element's length
(4 bytes, little-endian) followed by its bytes.

Every malformed tensor raises :class:`~servewell.errors.InvalidInput` naming it.
"""

from __future__ import annotations

import math
import struct
from typing import Any

import numpy as np

from servewell.core.coercion import coerce_array
from servewell.core.datatypes import V2_TO_NUMPY, from_numpy_dtype, is_float, is_integer
from servewell.core.signature import TensorSpec
from servewell.errors import InvalidInput

Array = np.ndarray[Any, Any]

_LENGTH = struct.Struct("<I")

#: The binary extension's request and response header: how many bytes of the body are
#: JSON (the tensors' bytes follow). It decides how a body reads, so it is also a part
#: of every response-cache key.
HEADER_LENGTH = b"inference-header-content-length"


def check_shape(name: str, shape: Any) -> tuple[int, ...]:
    """A tensor's declared shape: a list of non-negative integers."""
    if not isinstance(shape, list) or not all(
        isinstance(dim, int) and not isinstance(dim, bool) and dim >= 0 for dim in shape
    ):
        raise InvalidInput(
            f"input '{name}': 'shape' must be a list of non-negative integers, got {shape!r}",
            input_name=name,
        )
    return tuple(shape)


def check_datatype(name: str, datatype: Any) -> str:
    if datatype not in V2_TO_NUMPY:
        raise InvalidInput(
            f"input '{name}': unknown datatype {datatype!r}; "
            f"expected one of {', '.join(V2_TO_NUMPY)}",
            input_name=name,
        )
    return str(datatype)


def from_json(
    name: str, datatype: str, shape: tuple[int, ...], data: Any, nullable: bool = False
) -> Array:
    """A tensor from its V2 JSON ``data`` (flat or nested), as ``datatype`` says; null
    items are missing values when the input is ``nullable`` (NaN, or None for text)."""
    if not isinstance(data, list):
        data = [data]
    flat = _flatten(name, data) if _is_nested(data) else data
    if is_integer(datatype) and all(type(item) is int for item in flat):
        array = _exact_integers(name, datatype, flat)
    else:
        nullable = nullable and (is_float(datatype) or datatype == "BYTES")
        spec = TensorSpec(name=name, datatype=datatype, shape=(-1,), nullable=nullable)
        array = coerce_array(spec, flat)
    return _reshape(name, array, shape)


def from_bytes(name: str, datatype: str, shape: tuple[int, ...], raw: bytes | memoryview) -> Array:
    """A tensor from its raw bytes (Triton's binary tensor data extension)."""
    count = math.prod(shape)
    if datatype == "BYTES":
        return _reshape(name, _split_bytes(name, raw, count), shape)
    dtype = V2_TO_NUMPY[datatype].newbyteorder("<")
    expected = count * dtype.itemsize
    if len(raw) != expected:
        raise InvalidInput(
            f"input '{name}': binary data is {len(raw)} bytes, but shape {list(shape)} "
            f"of {datatype} needs {expected}",
            input_name=name,
        )
    array = np.frombuffer(raw, dtype=np.uint8 if datatype == "BOOL" else dtype)
    if datatype == "BOOL":
        if array.size and array.max() > 1:
            raise InvalidInput(f"input '{name}': BOOL bytes must be 0 or 1", input_name=name)
        array = array.view(np.bool_)
    return array.reshape(shape)


def to_json(array: Array) -> tuple[str, list[int], Any]:
    """A tensor's V2 ``datatype``, ``shape`` and flat ``data`` (numpy, for orjson)."""
    datatype = from_numpy_dtype(array.dtype)
    flat = array.reshape(-1)
    if datatype == "BYTES":
        return datatype, list(array.shape), [_to_text(item) for item in flat]
    return datatype, list(array.shape), np.ascontiguousarray(flat)


def to_bytes(array: Array) -> tuple[str, list[int], bytes]:
    """A tensor's V2 ``datatype``, ``shape`` and raw bytes."""
    datatype = from_numpy_dtype(array.dtype)
    if datatype == "BYTES":
        parts: list[bytes] = []
        for item in array.reshape(-1):
            value = item if isinstance(item, bytes) else str(item).encode("utf-8")
            parts.append(_LENGTH.pack(len(value)))
            parts.append(value)
        return datatype, list(array.shape), b"".join(parts)
    dtype = array.dtype.newbyteorder("<")
    return datatype, list(array.shape), np.ascontiguousarray(array, dtype=dtype).tobytes()


def _exact_integers(name: str, datatype: str, values: list[int]) -> Array:
    """Integers straight into their datatype: no trip through float64, where 2**64 - 1
    would lose its last digits."""
    try:
        return np.array(values, dtype=V2_TO_NUMPY[datatype])
    except OverflowError:
        info = np.iinfo(V2_TO_NUMPY[datatype])  # type: ignore[type-var]
        raise InvalidInput(
            f"input '{name}' has values outside the {datatype} range [{info.min}, {info.max}]",
            input_name=name,
        ) from None


def _is_nested(data: list[Any]) -> bool:
    return bool(data) and isinstance(data[0], list)


def _flatten(name: str, data: list[Any]) -> list[Any]:
    try:
        array = np.asarray(data, dtype=np.object_)
    except ValueError:
        array = None
    if array is None or any(isinstance(item, list) for item in array.reshape(-1)):
        raise InvalidInput(
            f"input '{name}': 'data' is nested unevenly (rows of different lengths?)",
            input_name=name,
        )
    return list(array.reshape(-1))


def _reshape(name: str, array: Array, shape: tuple[int, ...]) -> Array:
    if array.size != math.prod(shape):
        raise InvalidInput(
            f"input '{name}': shape {list(shape)} needs {math.prod(shape)} values, "
            f"'data' has {array.size}",
            input_name=name,
        )
    return array.reshape(shape)


def _split_bytes(name: str, raw: bytes | memoryview, count: int) -> Array:
    view = memoryview(raw)
    items = np.empty(count, dtype=np.object_)
    offset = 0
    for index in range(count):
        if offset + 4 > len(view):
            raise _short_bytes(name, count, index)
        (length,) = _LENGTH.unpack_from(view, offset)
        offset += 4
        if offset + length > len(view):
            raise _short_bytes(name, count, index)
        items[index] = bytes(view[offset : offset + length])
        offset += length
    if offset != len(view):
        raise InvalidInput(
            f"input '{name}': binary BYTES data has {len(view) - offset} bytes left over "
            f"after its {count} elements",
            input_name=name,
        )
    return items


def _short_bytes(name: str, count: int, index: int) -> InvalidInput:
    return InvalidInput(
        f"input '{name}': binary BYTES data ends inside element {index} of {count}",
        input_name=name,
    )


def _to_text(item: Any) -> str:
    if isinstance(item, bytes):
        return item.decode("utf-8", errors="replace")
    return str(item)
