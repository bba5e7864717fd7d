"""scikit-learn -> ONNX with skl2onnx, kept only when it computes what the estimator does.

The conversion is checked on sample rows (a trained pipeline's validation rows; random
rows within the feature ranges otherwise, see :mod:`servewell.registration.agreement`
for what "the same" means). It is made in float32 first; when that is not faithful, in
double precision: every step before the estimator computes in float64, and the estimator
takes float32, as scikit-learn's trees compare themselves. When neither is faithful,
:class:`~servewell.errors.ConversionFailed` says why, and the original serves.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any, Literal

import numpy as np

from servewell.core.figure import format_figure
from servewell.core.signature import Signature, TensorSpec
from servewell.errors import ConversionFailed, InvalidArtifact, InvalidInput, ModelFailed
from servewell.registration.agreement import Agreement, compare_outputs
from servewell.registration.converters import own_converters, register_double_imputer
from servewell.runtime.base import Array
from servewell.runtime.onnx import SIGNATURE_METADATA_KEY, OnnxRuntime
from servewell.runtime.sklearn import SklearnRuntime, is_classifier

logger = logging.getLogger(__name__)

Precision = Literal["float", "double"]
#: Tried in this order; the first faithful conversion is kept.
PRECISIONS: tuple[Precision, ...] = ("float", "double")
SAMPLE_ROWS = 256
_BITS = {"float": "float32", "double": "float64"}


@dataclass(frozen=True, slots=True)
class Conversion:
    """An ONNX model and how closely it matched the estimator it came from."""

    onnx_bytes: bytes
    precision: Precision
    agreement: Agreement

    @property
    def label_agreement(self) -> float | None:
        return self.agreement.label_agreement

    @property
    def max_abs_diff(self) -> float:
        return self.agreement.max_abs_diff

    @property
    def sample_rows(self) -> int:
        return self.agreement.rows

    def describe(self) -> str:
        """``ONNX (float32), max difference 1.2e-07 on 300 rows``."""
        bits, diff = _BITS[self.precision], self.max_abs_diff
        return f"ONNX ({bits}), max difference {format_figure(diff)} on {self.sample_rows} rows"

    def to_metrics(self) -> dict[str, float | int]:
        metrics: dict[str, float | int] = {
            "onnx_max_abs_diff": self.max_abs_diff,
            "onnx_tolerance": self.agreement.tolerance,
            "onnx_sample_rows": self.sample_rows,
            "onnx_float64": int(self.precision == "double"),
        }
        if self.label_agreement is not None:
            metrics["onnx_label_agreement"] = self.label_agreement
        return metrics


def convert_sklearn(
    estimator: Any,
    signature: Signature,
    sample: Mapping[str, Array] | None = None,
    *,
    target_scale: float | None = None,
) -> Conversion:
    """The first faithful conversion (float32, then float64); raises ConversionFailed
    naming the estimator and what went wrong at each precision."""
    sample = dict(sample) if sample is not None else synthetic_sample(signature)
    original = _original_outputs(estimator, signature, sample)
    failures: list[str] = []
    for precision in _precisions(estimator):
        try:
            onnx_bytes = to_onnx_bytes(estimator, signature, precision)
            agreement = compare_outputs(
                original, _converted_outputs(precision, signature, onnx_bytes, sample), target_scale
            )
        except ConversionFailed as exc:
            failures.append(exc.message)
            continue
        if agreement.faithful:
            return Conversion(onnx_bytes, precision, agreement)
        failures.append(f"in {_BITS[precision]} it {agreement.describe()}")
    reasons = "; ".join(dict.fromkeys(failures))  # the same reason once
    raise ConversionFailed(f"the ONNX conversion of {_describe(estimator)} is not used: {reasons}")


def _precisions(estimator: Any) -> tuple[Precision, ...]:
    """Double precision needs steps before the estimator: a bare estimator takes float32."""
    return PRECISIONS if len(getattr(estimator, "steps", ())) > 1 else PRECISIONS[:1]


def to_onnx_bytes(estimator: Any, signature: Signature, precision: Precision = "float") -> bytes:
    """The estimator as an ONNX model taking the signature's inputs, with the signature
    embedded; raises ConversionFailed when skl2onnx cannot convert it."""
    from skl2onnx import to_onnx

    register_double_imputer()
    model = _with_float_estimator(estimator) if precision == "double" else estimator
    options: dict[int, dict[str, Any]] = {
        id(s): {"precision": precision} for s in own_converters(model)
    }
    if is_classifier(estimator):
        options[id(model)] = {"zipmap": False}
    names = [spec.name for spec in signature.inputs]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # skl2onnx's deprecation chatter is not ours
            if _selects_named_columns(estimator, signature):
                # Fitted on named columns, served as one matrix: convert column by
                # column, then split the matrix into those columns inside the graph.
                column = _number_type(precision)
                columns = [(str(name), column([None, 1])) for name in estimator.feature_names_in_]
                onnx_model = to_onnx(model, initial_types=columns, options=options)
                _split_matrix_into_columns(onnx_model, names[0], precision)
            else:
                initial_types = [
                    (spec.name, _onnx_type(spec, precision)) for spec in signature.inputs
                ]
                onnx_model = to_onnx(model, initial_types=initial_types, options=options)
                _restore_input_names(onnx_model, names)
            _take_float32_inputs(onnx_model, signature)
    except Exception as exc:  # skl2onnx raises bare RuntimeError/NotImplementedError/...
        raise ConversionFailed(f"skl2onnx cannot convert it: {_first_line(exc)}") from exc
    entry = onnx_model.metadata_props.add()
    entry.key, entry.value = SIGNATURE_METADATA_KEY, json.dumps(signature.to_dict())
    return bytes(onnx_model.SerializeToString())


def _with_float_estimator(estimator: Any) -> Any:
    """The pipeline with a cast to float32 before its estimator (its steps unchanged)."""
    from skl2onnx.sklapi import CastTransformer
    from sklearn.pipeline import Pipeline

    cast = CastTransformer(dtype=np.float32).fit(np.zeros((1, 1)))
    return Pipeline([*estimator.steps[:-1], ("to_float32", cast), estimator.steps[-1]])


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


def _split_matrix_into_columns(model: Any, matrix_name: str, precision: Precision) -> None:
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
    element = TensorProto.DOUBLE if precision == "double" else TensorProto.FLOAT
    model.graph.input.append(
        helper.make_tensor_value_info(matrix_name, element, [None, len(columns)])
    )
    model.graph.node.insert(0, split)


def _take_float32_inputs(model: Any, signature: Signature) -> None:
    """Inputs the signature declares FP32 but the graph computes in double: the graph
    takes FP32, and casts it first."""
    from onnx import TensorProto, helper

    float32 = {spec.name for spec in signature.inputs if spec.datatype == "FP32"}
    for graph_input in model.graph.input:
        tensor = graph_input.type.tensor_type
        if graph_input.name not in float32 or tensor.elem_type != TensorProto.DOUBLE:
            continue
        as_double = f"{graph_input.name}__float64"
        for node in model.graph.node:
            for index, name in enumerate(node.input):
                if name == graph_input.name:
                    node.input[index] = as_double
        tensor.elem_type = TensorProto.FLOAT
        cast = helper.make_node(
            "Cast", [graph_input.name], [as_double], to=TensorProto.DOUBLE, name=f"{as_double}_cast"
        )
        model.graph.node.insert(0, cast)


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


@contextmanager
def loaded_conversion(onnx_bytes: bytes, signature: Signature) -> Iterator[OnnxRuntime]:
    """A conversion loaded in ONNX Runtime, for as long as the block runs."""
    with TemporaryDirectory() as folder:
        path = Path(folder) / "model.onnx"
        path.write_bytes(onnx_bytes)
        runtime = OnnxRuntime(path, signature=signature)
        try:
            runtime.load()
            yield runtime
        finally:
            runtime.close()


def _converted_outputs(
    precision: Precision, signature: Signature, onnx_bytes: bytes, sample: dict[str, Array]
) -> dict[str, Array]:
    try:
        with loaded_conversion(onnx_bytes, signature) as runtime:
            return runtime.predict(sample)
    except (InvalidArtifact, InvalidInput, ModelFailed) as exc:
        # skl2onnx produced a graph ONNX Runtime rejects (e.g. a Concat of double and
        # float columns): no conversion, and the original serves instead.
        raise ConversionFailed(f"in {_BITS[precision]} it does not run: {exc.message}") from exc


def _original_outputs(
    estimator: Any, signature: Signature, sample: dict[str, Array]
) -> dict[str, Array]:
    try:
        return SklearnRuntime.from_estimator(estimator, signature).predict(sample)
    except (KeyError, ValueError, InvalidInput, ModelFailed) as exc:
        raise ConversionFailed(f"could not compare the conversion on the sample: {exc}") from exc


def _number_type(precision: Precision) -> Any:
    from skl2onnx.common import data_types

    return data_types.DoubleTensorType if precision == "double" else data_types.FloatTensorType


def _onnx_type(spec: TensorSpec, precision: Precision) -> Any:
    from skl2onnx.common import data_types

    dims = [None if dim == -1 else dim for dim in spec.shape]
    if len(dims) == 1:
        dims.append(1)  # one raw column: skl2onnx wants [rows, 1]
    kinds = {
        "FP32": _number_type(precision),
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
