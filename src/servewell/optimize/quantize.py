"""Making an ONNX model smaller and faster: ONNX Runtime graph optimizations saved into
the file, and quantization with ``onnxruntime.quantization`` (int8) or float16.

Every function works file to file and keeps the source's ``metadata_props`` (servewell's
embedded signature, a text model's tokenizer). A quantization that leaves nothing
quantized is refused, naming the model's operators: a tree ensemble has no int8 form,
and pretending otherwise would register a copy under a misleading name. The quantizers
work on float32 graphs; a float64 one is narrowed first (:mod:`servewell.optimize.precision`).
What int8 quantizes, and how, is an :class:`~servewell.optimize.plan.Int8Plan`.

The saved graph optimizations are ONNX Runtime's *extended* level: fused operators of
the ``com.microsoft`` domain, which this and later ONNX Runtime versions on the CPU run,
but other runtimes may not.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, redirect_stdout
from pathlib import Path
from typing import Any

import numpy as np

from servewell.errors import ConversionFailed, InvalidData, InvalidInput
from servewell.optimize.plan import (
    ALL,
    INT8,
    WEIGHTED_OPERATORS,
    Int8Plan,
    Quantization,
    int8_operators,
)
from servewell.runtime.base import Array
from servewell.runtime.onnx import map_ort_errors
from servewell.settings import RuntimeSettings

logger = logging.getLogger(__name__)

_INT8_TYPES = frozenset({2, 3})  # onnx.TensorProto.UINT8, INT8
_FP16_TYPE = 10  # onnx.TensorProto.FLOAT16
_FLOAT_TYPE = 1  # onnx.TensorProto.FLOAT


def optimize_graph(source: Path, target: Path, settings: RuntimeSettings | None = None) -> Path:
    """Apply ONNX Runtime's graph optimizations (extended level) and save the result."""
    import onnxruntime as ort

    settings = settings or RuntimeSettings()
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(target)
    options.intra_op_num_threads = settings.intra_op_threads
    options.log_severity_level = 3
    with map_ort_errors(source, loading=True):
        ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])
    _copy_metadata(source, target)
    return target


def require_quantizable(
    source: Path, method: Quantization, plan: Int8Plan | None = None
) -> tuple[str, ...]:
    """The graph's operator types whose weights ``method`` (with ``plan``, for int8)
    makes smaller; refused when there are none. fp16 needs a weighted operator too: ONNX
    Runtime keeps the ``ai.onnx.ml`` operators (trees, linear models) in float32."""
    if method == "none":
        return ()
    operators = describe_operators(source)
    wanted = (
        int8_operators(method, (plan or Int8Plan()).operators)
        if method in INT8
        else WEIGHTED_OPERATORS
    )
    chosen = sorted(set(wanted).intersection(operators))
    if not chosen:
        raise _nothing_to_quantize(method, operators)
    return tuple(chosen)


def quantize_file(
    source: Path,
    target: Path,
    method: Quantization,
    calibration: Sequence[Mapping[str, Array]] = (),
    plan: Int8Plan | None = None,
) -> Path:
    """Quantize the float32 graph ``source`` into ``target``; ``calibration`` (graph feeds)
    for static int8."""
    plan = plan or Int8Plan()
    require_quantizable(source, method, plan)
    try:
        with _quiet_quantizer():
            if method == "dynamic-int8":
                _dynamic_int8(source, target, plan)
            elif method == "static-int8":
                _static_int8(source, target, calibration, plan)
            elif method == "fp16":
                _fp16(source, target)
            else:
                raise ValueError(method)
    except (InvalidInput, InvalidData):
        raise
    except Exception as exc:  # onnxruntime.quantization raises bare RuntimeError/ValueError
        raise ConversionFailed(f"{method} quantization failed: {_first_line(exc)}") from exc
    _require_change(target, method)
    _copy_metadata(source, target)
    return target


def _dynamic_int8(source: Path, target: Path, plan: Int8Plan) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        str(source),
        str(target),
        op_types_to_quantize=list(int8_operators("dynamic-int8", plan.operators)),
        per_channel=plan.per_channel,
        weight_type=QuantType.QInt8,
        extra_options=_extra_options(plan),
    )


def _static_int8(
    source: Path, target: Path, calibration: Sequence[Mapping[str, Array]], plan: Int8Plan
) -> None:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):  # type: ignore[misc]
        """Hands the calibrator one batch of graph feeds at a time."""

        def __init__(self) -> None:
            self._batches = iter(calibration)

        def get_next(self) -> dict[str, Array] | None:
            batch = next(self._batches, None)
            return dict(batch) if batch is not None else None

    if not calibration:
        raise InvalidData("static int8 needs calibration rows; give --calibration DATA")
    if plan.calibration_method != "minmax":
        _require_one_shape(calibration, plan.calibration_method)
    quantize_static(
        str(source),
        str(target),
        Reader(),
        quant_format=QuantFormat.QDQ,
        op_types_to_quantize=list(int8_operators("static-int8", plan.operators)),
        per_channel=plan.per_channel,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=getattr(CalibrationMethod, _CALIBRATION_MEMBERS[plan.calibration_method]),
        extra_options=_extra_options(plan),
    )


def _require_one_shape(calibration: Sequence[Mapping[str, Array]], method: str) -> None:
    """The histogram calibrators stack every batch into one array: one shape only (a text
    model's token ids are as long as each batch's longest text)."""
    for name in calibration[0]:
        shapes = sorted({tuple(np.shape(batch[name])) for batch in calibration})
        if len(shapes) > 1:
            raise InvalidInput(
                f"--calibration-method {method} needs calibration batches of one shape; the "
                f"model's input '{name}' varies ({shapes[0]} vs {shapes[-1]}); "
                "use --calibration-method minmax"
            )


#: ``--calibration-method`` -> onnxruntime.quantization.CalibrationMethod's member.
_CALIBRATION_MEMBERS = {
    "minmax": "MinMax",
    "entropy": "Entropy",
    "percentile": "Percentile",
    "distribution": "Distribution",
}


def _extra_options(plan: Int8Plan) -> dict[str, Any]:
    if plan.operators == ALL:
        return {"DefaultTensorType": _FLOAT_TYPE}
    return {
        "DefaultTensorType": _FLOAT_TYPE,
        # A MatMul of two activations (attention scores) has no weights: left in float.
        "MatMulConstBOnly": True,
        # Their outputs stay float: the bias Add and activation after them are not
        # quantized, so an int8 output would only round (one outlier unit would take
        # the whole layer's scale) for nothing.
        "OpTypesToExcludeOutputQuantization": sorted(WEIGHTED_OPERATORS),
    }


def _fp16(source: Path, target: Path) -> None:
    import onnx
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16

    model = onnx.load(str(source))
    # Concat stays float32: the converter casts what it converts but not a Concat whose
    # inputs come from operators it keeps in float32 (a table pipeline's Scaler and
    # OneHotEncoder), which leaves a graph ONNX Runtime refuses to load.
    blocked = [*DEFAULT_OP_BLOCK_LIST, "Concat"]
    converted = convert_float_to_float16(model, keep_io_types=True, op_block_list=blocked)
    _store_raw_float16(converted.graph)
    onnx.save(converted, str(target))


def _store_raw_float16(graph: Any) -> None:
    """float16 weights as 2 raw bytes each: the converter leaves them in ``int32_data``,
    varints of up to 3 bytes a value, which on a small model costs more than it saves."""
    from onnx import numpy_helper

    for index, init in enumerate(graph.initializer):
        if init.data_type == _FP16_TYPE and not init.raw_data:
            graph.initializer[index].CopyFrom(
                numpy_helper.from_array(numpy_helper.to_array(init), init.name)
            )


def _require_change(target: Path, method: Quantization) -> None:
    import onnx

    model = onnx.load(str(target), load_external_data=False)
    wanted = _FP16_TYPE if method == "fp16" else None
    for init in model.graph.initializer:
        kind = init.data_type
        if (wanted is not None and kind == wanted) or (wanted is None and kind in _INT8_TYPES):
            return
    raise _nothing_to_quantize(method, sorted({node.op_type for node in model.graph.node}))


def _nothing_to_quantize(method: Quantization, operators: list[str]) -> InvalidInput:
    form = "a float16" if method == "fp16" else "an int8"
    return InvalidInput(
        f"{method} cannot shrink this model: none of its operators "
        f"({', '.join(operators)}) has weights with {form} form in ONNX Runtime",
        quantization=method,
        operators=operators,
    )


def describe_operators(path: Path) -> list[str]:
    """The distinct operator types of a graph (for reports and errors)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return sorted({node.op_type for node in model.graph.node})


def _copy_metadata(source: Path, target: Path) -> None:
    import onnx

    wanted = {
        e.key: e.value for e in onnx.load(str(source), load_external_data=False).metadata_props
    }
    model = onnx.load(str(target))
    present = {e.key: e.value for e in model.metadata_props}
    if all(present.get(key) == value for key, value in wanted.items()):
        return
    for key, value in wanted.items():
        if key not in present:
            entry = model.metadata_props.add()
            entry.key, entry.value = key, value
    onnx.save(model, str(target))


@contextmanager
def _quiet_quantizer() -> Iterator[None]:
    """onnxruntime.quantization logs advice on the root logger and its histogram
    calibrators print progress to stdout (which ``--json`` owns); keep both out."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.ERROR))
    printed = io.StringIO()
    try:
        with redirect_stdout(printed):
            yield
    finally:
        root.setLevel(level)
        if printed.getvalue():
            logger.debug("onnxruntime.quantization printed: %s", printed.getvalue().strip())


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
