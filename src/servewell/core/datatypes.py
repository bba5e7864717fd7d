"""Open Inference Protocol (KServe V2) tensor datatypes and their numpy counterparts."""

from __future__ import annotations

from typing import Final

import numpy as np

from servewell.errors import InvalidInput

#: V2 datatype name -> numpy dtype. BYTES tensors are numpy object arrays of ``bytes``.
V2_TO_NUMPY: Final[dict[str, np.dtype[np.generic]]] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
    "BYTES": np.dtype(np.object_),
}

DATATYPES: Final[tuple[str, ...]] = tuple(V2_TO_NUMPY)

_NUMPY_TO_V2: Final[dict[np.dtype[np.generic], str]] = {
    dtype: name for name, dtype in V2_TO_NUMPY.items() if name != "BYTES"
}


def is_float(datatype: str) -> bool:
    return datatype in ("FP16", "FP32", "FP64")


def is_integer(datatype: str) -> bool:
    return datatype.startswith(("INT", "UINT"))


def to_numpy_dtype(datatype: str) -> np.dtype[np.generic]:
    """The numpy dtype of a V2 datatype; an unknown name is the caller's mistake."""
    try:
        return V2_TO_NUMPY[datatype]
    except KeyError:
        raise InvalidInput(
            f"unknown datatype '{datatype}'; expected one of {', '.join(DATATYPES)}"
        ) from None


def from_numpy_dtype(dtype: np.dtype[np.generic]) -> str:
    """The V2 datatype of a numpy dtype (strings and objects are BYTES)."""
    if dtype.kind in ("U", "S", "O"):
        return "BYTES"
    try:
        return _NUMPY_TO_V2[dtype]
    except KeyError:
        raise InvalidInput(f"numpy dtype {dtype} has no V2 datatype") from None
