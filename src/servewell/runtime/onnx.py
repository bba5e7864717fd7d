"""ONNX Runtime on the CPU: the fast path."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from servewell.core.signature import Signature, TensorSpec
from servewell.errors import InvalidArtifact, InvalidInput, InvalidSignature, ModelFailed
from servewell.runtime.base import Array, as_declared, sample_inputs, to_text
from servewell.settings import RuntimeSettings

logger = logging.getLogger(__name__)

#: Key of the custom metadata entry where servewell keeps a signature inside an ONNX file.
SIGNATURE_METADATA_KEY = "servewell.signature"

#: A missing text value as an ONNX graph receives it (ONNX strings cannot be null); the
#: conversions of servewell's pipelines impute exactly this value.
MISSING_TEXT = ""

_ORT_TYPES = {
    "tensor(bool)": "BOOL",
    "tensor(uint8)": "UINT8",
    "tensor(uint16)": "UINT16",
    "tensor(uint32)": "UINT32",
    "tensor(uint64)": "UINT64",
    "tensor(int8)": "INT8",
    "tensor(int16)": "INT16",
    "tensor(int32)": "INT32",
    "tensor(int64)": "INT64",
    "tensor(float16)": "FP16",
    "tensor(float)": "FP32",
    "tensor(double)": "FP64",
    "tensor(string)": "BYTES",
}


@contextmanager
def map_ort_errors(path: Path, *, loading: bool) -> Iterator[None]:
    """Translate ONNX Runtime's exceptions into servewell's, once, at this edge."""
    from onnxruntime.capi import onnxruntime_pybind11_state as ort_state

    try:
        yield
    except ort_state.InvalidArgument as exc:
        if loading:
            raise InvalidArtifact(f"{path.name} is not a loadable ONNX model: {exc}") from exc
        raise InvalidInput(f"the model rejected the input: {_first_line(exc)}") from exc
    except (ort_state.InvalidProtobuf, ort_state.InvalidGraph, ort_state.NoModel) as exc:
        raise InvalidArtifact(f"{path.name} is not a valid ONNX model: {_first_line(exc)}") from exc
    except (ort_state.Fail, ort_state.RuntimeException, ort_state.NotImplemented) as exc:
        if loading:
            raise InvalidArtifact(f"{path.name} cannot be loaded: {_first_line(exc)}") from exc
        raise ModelFailed(f"ONNX Runtime failed: {_first_line(exc)}") from exc


class OnnxRuntime:
    """Runs an ONNX model with ONNX Runtime's CPU provider."""

    platform = "onnxruntime_onnx"
    may_block = False

    def __init__(
        self,
        path: Path,
        settings: RuntimeSettings | None = None,
        signature: Signature | None = None,
    ) -> None:
        self.path = path
        self.settings = settings or RuntimeSettings()
        self.signature = signature
        self._session: Any = None
        self._output_names: list[str] = []

    def load(self) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = self.settings.intra_op_threads
        options.inter_op_num_threads = self.settings.inter_op_threads
        if not self.settings.spin_threads:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        options.graph_optimization_level = {
            "disabled": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        }[self.settings.graph_optimization]
        options.log_severity_level = 3  # errors only; warnings go through our logging
        with map_ort_errors(self.path, loading=True):
            self._session = ort.InferenceSession(
                str(self.path), options, providers=["CPUExecutionProvider"]
            )
        inferred = signature_from_session(self._session)
        self.signature = self.signature or inferred
        # Non-tensor outputs (a ZipMap's list of dicts) cannot travel as V2 tensors.
        self._output_names = [spec.name for spec in inferred.outputs]

    def warm_up(self) -> None:
        self.predict(sample_inputs(self.describe()))

    def predict(self, inputs: Mapping[str, Array]) -> dict[str, Array]:
        session = self._require_session()
        feeds = {}
        for node in session.get_inputs():
            array = inputs[node.name]
            if array.ndim == 1 and len(node.shape) == 2:
                array = array.reshape(-1, 1)  # a raw column, as skl2onnx declares it
            if node.type == "tensor(string)":
                array = to_text(node.name, array, missing=MISSING_TEXT)
            feeds[node.name] = array
        with map_ort_errors(self.path, loading=False):
            values = session.run(self._output_names, feeds)
        outputs = {
            name: _from_ort_output(value)
            for name, value in zip(self._output_names, values, strict=True)
        }
        return as_declared(self.describe(), outputs)

    def describe(self) -> Signature:
        self._require_session()
        assert self.signature is not None
        return self.signature

    def close(self) -> None:
        self._session = None

    def _require_session(self) -> Any:
        if self._session is None:
            raise RuntimeError("OnnxRuntime.load() was not called")
        return self._session


def signature_from_session(session: Any) -> Signature:
    """The signature an ONNX graph declares, refined by one servewell embedded, if any."""
    embedded = session.get_modelmeta().custom_metadata_map.get(SIGNATURE_METADATA_KEY)
    if embedded:
        try:
            return Signature.from_dict(json.loads(embedded))
        except (ValueError, InvalidSignature):
            logger.warning("ignoring an unreadable embedded signature")
    inputs = tuple(_tensor_spec(node) for node in session.get_inputs())
    outputs = tuple(_tensor_spec(node) for node in session.get_outputs() if node.type in _ORT_TYPES)
    if any(spec is None for spec in inputs):
        raise InvalidArtifact("the ONNX model has an input that is not a plain tensor")
    return Signature(inputs=inputs, outputs=outputs)


def _tensor_spec(node: Any) -> TensorSpec | None:
    datatype = _ORT_TYPES.get(node.type)
    if datatype is None:
        return None
    shape = tuple(dim if isinstance(dim, int) and dim > 0 else -1 for dim in node.shape)
    return TensorSpec(name=node.name, datatype=datatype, shape=shape or (-1,))


def _from_ort_output(value: Any) -> Array:
    array = np.asarray(value)
    if array.dtype.kind in ("U", "O"):
        flat = [str(item).encode("utf-8") for item in array.reshape(-1)]
        return np.array(flat, dtype=np.object_).reshape(array.shape)
    return array


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
