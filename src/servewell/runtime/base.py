"""The Runtime protocol: what every way of running a model offers.

A runtime is built with a local artifact path and options (the constructor only stores
them), does its I/O in :meth:`Runtime.load`, and then predicts on whole batches. It
knows nothing of HTTP, batching or the registry.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import numpy as np

from servewell.core.signature import Signature
from servewell.errors import InvalidInput

Array = np.ndarray[Any, Any]


@runtime_checkable
class Runtime(Protocol):
    """Runs one model version."""

    platform: str
    """What runs the model, in the V2 metadata's words (``onnxruntime_onnx``, ``scikit-learn``)."""

    may_block: bool
    """Whether predict runs code whose time warm-up cannot foretell (a user's Python may
    sleep, do I/O or call other services): such a runtime never runs on the event loop."""

    def load(self) -> None:
        """Read the artifact and get ready to predict; raises InvalidArtifact if unreadable."""

    def warm_up(self) -> None:
        """Run one tiny prediction so the first real request pays no start-up cost."""

    def predict(self, inputs: Mapping[str, Array]) -> dict[str, Array]:
        """Predict on a batch: validated inputs by name -> outputs by name, same row count."""

    def describe(self) -> Signature:
        """The signature, inferred from the loaded model unless one was given."""

    def close(self) -> None:
        """Release what :meth:`load` took."""


def sample_inputs(signature: Signature, rows: int = 1) -> dict[str, Array]:
    """A harmless batch matching ``signature``, for warming up."""
    from servewell.core.datatypes import to_numpy_dtype

    batch: dict[str, Array] = {}
    for spec in signature.inputs:
        shape = tuple(rows if i == 0 else max(dim, 1) for i, dim in enumerate(spec.shape))
        if spec.datatype == "BYTES":
            # An ISO 8601 datetime: harmless as text or a category, and valid where a
            # trained pipeline parses the column as a datetime.
            batch[spec.name] = np.full(shape, b"1970-01-01T00:00:00", dtype=np.object_)
        else:
            batch[spec.name] = np.zeros(shape, dtype=to_numpy_dtype(spec.datatype))
    return batch


def to_text(name: str, array: Array, missing: Any = None) -> Array:
    """``array`` with its bytes decoded as UTF-8 (an object array of the same shape), for
    models that take strings; bytes that are not UTF-8 are the caller's error. A missing
    value (None, from a nullable input) becomes ``missing``: what the model reads as one."""
    flat = array.reshape(-1)
    texts = np.empty(len(flat), dtype=np.object_)
    for index, item in enumerate(flat):
        if item is None:
            texts[index] = missing
            continue
        try:
            texts[index] = item.decode("utf-8") if isinstance(item, bytes) else item
        except UnicodeDecodeError:
            raise InvalidInput(
                f"input '{name}' item {index} is not valid UTF-8", input_name=name
            ) from None
    return texts.reshape(array.shape)


def as_declared(signature: Signature, outputs: dict[str, Array]) -> dict[str, Array]:
    """``outputs`` in the datatypes the signature declares for them, so what a model
    returns is what its metadata says (an ONNX conversion in double precision, or a
    scikit-learn pipeline, may compute probabilities as FP64 behind an FP32 signature)."""
    from servewell.core.datatypes import to_numpy_dtype

    for spec in signature.outputs:
        array = outputs.get(spec.name)
        if array is None or spec.datatype == "BYTES" or array.dtype.kind not in "biuf":
            continue
        dtype = to_numpy_dtype(spec.datatype)
        if array.dtype != dtype:
            outputs[spec.name] = array.astype(dtype)
    return outputs
