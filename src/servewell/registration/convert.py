"""scikit-learn -> ONNX with skl2onnx, kept only when the two agree on a sample."""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import numpy as np

from servewell.core.signature import Signature, TensorSpec
from servewell.errors import ConversionFailed, InvalidArtifact, InvalidInput, ModelFailed
from servewell.runtime.base import Array
from servewell.runtime.onnx import SIGNATURE_METADATA_KEY, OnnxRuntime
from servewell.runtime.sklearn import SklearnRuntime, is_classifier

logger = logging.getLogger(__name__)

#: Least share of sample rows on which the conversion must give the original's label.
MIN_LABEL_AGREEMENT = 0.995
SAMPLE_ROWS = 256


@dataclass(frozen=True, slots=True)
class Conversion:
    """An ONNX model and how closely it matched the estimator it came from."""

    onnx_bytes: bytes
    label_agreement: float
    max_abs_diff: float
    sample_rows: int

    def to_metrics(self) -> dict[str, float | int]:
        return {
            "onnx_label_agreement": self.label_agreement,
            "onnx_max_abs_diff": self.max_abs_diff,
            "onnx_sample_rows": self.sample_rows,
        }


def convert_sklearn(
    estimator: Any, signature: Signature, sample: Mapping[str, Array] | None = None
) -> Conversion:
    """Convert and verify; raises ConversionFailed naming the estimator when skl2onnx can't."""
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType

    sample = dict(sample) if sample is not None else synthetic_sample(signature)
    options = {"zipmap": False} if is_classifier(estimator) else None
    names = [spec.name for spec in signature.inputs]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # skl2onnx's deprecation chatter is not ours
            if _selects_named_columns(estimator, signature):
                # Fitted on named columns, served as one matrix: convert column by
                # column, then split the matrix into those columns inside the graph.
                columns = [
                    (str(name), FloatTensorType([None, 1])) for name in estimator.feature_names_in_
                ]
                model = to_onnx(estimator, initial_types=columns, options=options)
                _split_matrix_into_columns(model, names[0])
            else:
                initial_types = [(spec.name, _onnx_type(spec)) for spec in signature.inputs]
                model = to_onnx(estimator, initial_types=initial_types, options=options)
                _restore_input_names(model, names)
    except Exception as exc:  # skl2onnx raises bare RuntimeError/NotImplementedError/...
        raise ConversionFailed(
            f"skl2onnx cannot convert {_describe(estimator)}: {_first_line(exc)}"
        ) from exc
    entry = model.metadata_props.add()
    entry.key, entry.value = SIGNATURE_METADATA_KEY, json.dumps(signature.to_dict())
    onnx_bytes = model.SerializeToString()
    return _verify(estimator, signature, onnx_bytes, sample)


def _selects_named_columns(estimator: Any, signature: Signature) -> bool:
    """A matrix signature over an estimator that picks columns by name (ColumnTransformer)."""
    from sklearn.compose import ColumnTransformer

    names = getattr(estimator, "feature_names_in_", None)
    if names is None or len(signature.inputs) != 1 or signature.inputs[0].name != "input":
        return False
    steps = [step for _, step in getattr(estimator, "steps", [("model", estimator)])]
    return any(isinstance(step, ColumnTransformer) for step in steps)


def _restore_input_names(model: Any, names: list[str]) -> None:
    """skl2onnx rewrites input names ('mean radius' -> 'mean_radius'); put ours back."""
    renames = {
        node.name: name
        for node, name in zip(model.graph.input, names, strict=True)
        if node.name != name
    }
    _rename_inputs(model, renames)


def _rename_inputs(model: Any, renames: dict[str, str]) -> None:
    for graph_input in model.graph.input:
        graph_input.name = renames.get(graph_input.name, graph_input.name)
    for node in model.graph.node:
        for index, name in enumerate(node.input):
            if name in renames:
                node.input[index] = renames[name]


def _split_matrix_into_columns(model: Any, matrix_name: str) -> None:
    """Replace the graph's per-column inputs [N, 1] by one matrix input [N, C] + Split."""
    from onnx import TensorProto, helper, numpy_helper

    columns = [graph_input.name for graph_input in model.graph.input]
    opset = max(op.version for op in model.opset_import if op.domain in ("", "ai.onnx"))
    split_sizes = numpy_helper.from_array(
        np.ones(len(columns), dtype=np.int64), name=f"{matrix_name}_split_sizes"
    )
    if opset >= 13:
        split = helper.make_node(
            "Split", [matrix_name, split_sizes.name], columns, axis=1, name="split_matrix"
        )
        model.graph.initializer.append(split_sizes)
    else:
        split = helper.make_node(
            "Split", [matrix_name], columns, axis=1, split=[1] * len(columns), name="split_matrix"
        )
    del model.graph.input[:]
    model.graph.input.append(
        helper.make_tensor_value_info(matrix_name, TensorProto.FLOAT, [None, len(columns)])
    )
    model.graph.node.insert(0, split)


def synthetic_sample(signature: Signature, rows: int = SAMPLE_ROWS) -> dict[str, Array]:
    """Rows to compare on when the caller has none: standard normal, clipped to ranges."""
    rng = np.random.default_rng(0)
    spec = signature.inputs[0]
    if len(signature.inputs) != 1 or spec.datatype not in ("FP32", "FP64"):
        raise ConversionFailed("give a sample of real rows to verify this model's conversion")
    width = spec.shape[-1] if spec.shape[-1] > 0 else len(signature.feature_names or ()) or 1
    values = rng.standard_normal((rows, width)).astype(np.float32)
    for column, name in enumerate(signature.feature_names or ()):
        bounds = signature.feature_ranges.get(name)
        if bounds is not None:
            values[:, column] = np.clip(values[:, column], bounds.min, bounds.max)
    return {spec.name: values}


def _verify(
    estimator: Any, signature: Signature, onnx_bytes: bytes, sample: dict[str, Array]
) -> Conversion:
    with TemporaryDirectory() as folder:
        path = Path(folder) / "model.onnx"
        path.write_bytes(onnx_bytes)
        runtime = OnnxRuntime(path, signature=signature)
        try:
            runtime.load()
            converted = runtime.predict(sample)
        except (InvalidArtifact, InvalidInput, ModelFailed) as exc:
            # skl2onnx produced a graph ONNX Runtime rejects (e.g. a Concat of double and
            # float columns): no conversion, and the original serves instead.
            raise ConversionFailed(
                f"the ONNX conversion of {_describe(estimator)} does not run: {exc.message}"
            ) from exc
        finally:
            runtime.close()
    try:
        original = SklearnRuntime.from_estimator(estimator, signature).predict(sample)
    except (KeyError, ValueError) as exc:
        raise ConversionFailed(f"could not compare the conversion on the sample: {exc}") from exc
    rows = len(next(iter(sample.values())))
    if "label" in original:
        agreement = float(np.mean(converted["label"] == original["label"]))
        # A signature may declare the label alone; then the labels are all there is.
        both = "probabilities" in original and "probabilities" in converted
        compared = "probabilities" if both else "label"
    else:
        agreement, compared = 1.0, "variable"
    diff = float(np.max(np.abs(converted[compared] - original[compared])))
    if agreement < MIN_LABEL_AGREEMENT:
        raise ConversionFailed(
            f"the ONNX conversion of {_describe(estimator)} gives other labels on "
            f"{(1 - agreement):.1%} of {rows} sample rows"
        )
    return Conversion(onnx_bytes, agreement, diff, rows)


def _onnx_type(spec: TensorSpec) -> Any:
    from skl2onnx.common import data_types

    dims = [None if dim == -1 else dim for dim in spec.shape]
    if len(dims) == 1:
        dims.append(1)  # one raw column: skl2onnx wants [rows, 1]
    kinds = {
        "FP32": data_types.FloatTensorType,
        "FP64": data_types.DoubleTensorType,
        "INT64": data_types.Int64TensorType,
        "INT32": data_types.Int32TensorType,
        "BOOL": data_types.BooleanTensorType,
        "BYTES": data_types.StringTensorType,
    }
    if spec.datatype not in kinds:
        raise ConversionFailed(f"input '{spec.name}' of type {spec.datatype} has no ONNX type")
    return kinds[spec.datatype](dims)


def _describe(estimator: Any) -> str:
    steps = getattr(estimator, "steps", None)
    if steps:
        return f"Pipeline({', '.join(type(step).__name__ for _, step in steps)})"
    return type(estimator).__name__


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
