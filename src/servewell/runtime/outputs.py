"""Holding what a model's own code returned to the outputs its signature declares.

A runtime that runs the user's code (the ``python`` format) cannot know what comes
back. What does not match the signature is the model's fault, so it is a
:class:`~servewell.errors.ModelFailed` (a 500 whose log line says what differs), never
an answer in a shape or datatype the model's metadata does not promise.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from servewell.core.datatypes import to_numpy_dtype
from servewell.core.signature import Signature, TensorSpec
from servewell.errors import ModelFailed
from servewell.runtime.base import Array


def conform_outputs(signature: Signature, returned: Any, who: str) -> dict[str, Array]:
    """``returned`` as exactly the signature's outputs, each with its datatype; ``who``
    (``"SumModel.predict"``) names the code in the error."""
    if not isinstance(returned, Mapping):
        raise ModelFailed(f"{who} returned a {type(returned).__name__}, not a dict of arrays")
    declared = [spec.name for spec in signature.outputs]
    missing = [name for name in declared if name not in returned]
    unknown = sorted(str(name) for name in returned if name not in declared)
    if missing or unknown:
        wrong = [f"missing {missing}"] * bool(missing) + [f"not declared {unknown}"] * bool(unknown)
        raise ModelFailed(
            f"{who} returned the outputs {sorted(map(str, returned))}, its signature "
            f"declares {declared}: {'; '.join(wrong)}"
        )
    return {spec.name: _conform(spec, returned[spec.name], who) for spec in signature.outputs}


def _conform(spec: TensorSpec, value: Any, who: str) -> Array:
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as exc:
        raise ModelFailed(f"{who} returned '{spec.name}' that is not an array: {exc}") from exc
    shape_ok = array.ndim == len(spec.shape) and all(
        want in (-1, got) for want, got in zip(spec.shape[1:], array.shape[1:], strict=True)
    )
    if not shape_ok:
        raise ModelFailed(
            f"{who} returned '{spec.name}' of shape {list(array.shape)}; its signature "
            f"says {list(spec.shape)}"
        )
    if spec.datatype == "BYTES":
        return _as_bytes(spec, array, who)
    return _as_numbers(spec, array, who)


def _as_numbers(spec: TensorSpec, array: Array, who: str) -> Array:
    """The array in the declared datatype: as it is, or cast where nothing is lost but
    float precision (float64 to FP32); integers narrowed only when every value fits."""
    want = to_numpy_dtype(spec.datatype)
    if array.dtype == want:
        return array
    got = array.dtype
    if np.can_cast(got, want, "safe") or (got.kind == want.kind == "f"):
        return array.astype(want)
    if got.kind in "iu" and want.kind in "iu":
        cast = array.astype(want)
        if np.array_equal(cast, array):
            return cast
    raise ModelFailed(f"{who} returned '{spec.name}' as {got}; its signature says {spec.datatype}")


def _as_bytes(spec: TensorSpec, array: Array, who: str) -> Array:
    """Text outputs as an object array of UTF-8 bytes, as every runtime gives them."""
    if array.dtype.kind not in "OUS":
        raise ModelFailed(
            f"{who} returned '{spec.name}' as {array.dtype}; its signature says BYTES"
        )
    items = []
    for item in array.reshape(-1).tolist():
        if isinstance(item, str):
            item = item.encode("utf-8")
        elif not isinstance(item, bytes):
            raise ModelFailed(
                f"{who} returned '{spec.name}' holding {type(item).__name__} values; BYTES "
                "outputs hold str or bytes"
            )
        items.append(item)
    return np.array(items, dtype=np.object_).reshape(array.shape)
