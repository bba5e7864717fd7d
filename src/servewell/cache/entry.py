"""Cache keys and entries: model outputs as bytes, independent of any protocol.

The key is the *resolved* version plus a hash of the canonical input bytes (names,
datatypes, shapes and values after validation), so version 3's answer can never be served
for version 4, and promoting an alias can never serve a stale answer.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Mapping
from typing import Any

import numpy as np

Array = np.ndarray[Any, Any]

_MAGIC = b"SWC1"


def cache_key(model: str, version: int, inputs: Mapping[str, Array]) -> str:
    digest = hashlib.sha256()
    for name in sorted(inputs):
        _absorb(digest, name, inputs[name])
    return f"{model}@{version}:{digest.hexdigest()}"


def encode_outputs(outputs: Mapping[str, Array]) -> bytes:
    parts = [_MAGIC, struct.pack("<I", len(outputs))]
    for name, array in outputs.items():
        parts.append(_field(name.encode()))
        parts.append(_field(_dtype_code(array).encode()))
        parts.append(struct.pack("<I", array.ndim) + struct.pack(f"<{array.ndim}q", *array.shape))
        parts.append(_field(_payload(array)))
    return b"".join(parts)


def decode_outputs(data: bytes) -> dict[str, Array]:
    """The outputs back; raises ValueError on bytes that are not a cache entry."""
    if not data.startswith(_MAGIC):
        raise ValueError("not a servewell cache entry")
    view = memoryview(data)
    offset = len(_MAGIC)
    (count,) = struct.unpack_from("<I", view, offset)
    offset += 4
    outputs: dict[str, Array] = {}
    for _ in range(count):
        name, offset = _read_field(view, offset)
        dtype, offset = _read_field(view, offset)
        (ndim,) = struct.unpack_from("<I", view, offset)
        shape = struct.unpack_from(f"<{ndim}q", view, offset + 4)
        offset += 4 + 8 * ndim
        payload, offset = _read_field(view, offset)
        outputs[bytes(name).decode()] = _array(bytes(dtype).decode(), shape, bytes(payload))
    return outputs


def _absorb(digest: Any, name: str, array: Array) -> None:
    """Name, dtype and shape in one update, then the values (numbers: straight from the
    array's buffer, without a copy when it is contiguous)."""
    encoded = name.encode()
    digest.update(
        b"".join(
            (
                struct.pack("<I", len(encoded)),
                encoded,
                _dtype_code(array).encode(),
                struct.pack(f"<{array.ndim}q", *array.shape),
            )
        )
    )
    if array.dtype.kind == "O":
        digest.update(_payload(array))
    else:
        digest.update(np.ascontiguousarray(array).data)


def _dtype_code(array: Array) -> str:
    return "bytes" if array.dtype.kind == "O" else array.dtype.str


def _payload(array: Array) -> bytes:
    if array.dtype.kind == "O":
        items = [item if isinstance(item, bytes) else str(item).encode() for item in array.flat]
        return b"".join(_field(item) for item in items)
    return np.ascontiguousarray(array).tobytes()


def _array(dtype: str, shape: tuple[int, ...], payload: bytes) -> Array:
    if dtype == "bytes":
        items: list[bytes] = []
        view = memoryview(payload)
        offset = 0
        while offset < len(payload):
            item, offset = _read_field(view, offset)
            items.append(bytes(item))
        return np.array(items, dtype=np.object_).reshape(shape)
    return np.frombuffer(payload, dtype=np.dtype(dtype)).reshape(shape)


def _field(data: bytes) -> bytes:
    return struct.pack("<I", len(data)) + data


def _read_field(view: memoryview, offset: int) -> tuple[memoryview, int]:
    (size,) = struct.unpack_from("<I", view, offset)
    start = offset + 4
    return view[start : start + size], start + size
