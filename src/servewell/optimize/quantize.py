"""Making an ONNX model smaller and faster: ONNX Runtime graph optimizations saved into
the file, and quantization with ``onnxruntime.quantization`` (int8) or float16.

Every function works file to file and keeps the source's ``metadata_props`` (servewell's
embedded signature, a text model's tokenizer). A quantization that leaves nothing
quantized is refused, naming the model's operators: a tree ensemble has no int8 form,
and pretending otherwise would register a copy under a misleading name.

The saved graph optimizations are ONNX Runtime's *extended* level: fused operators of
the ``com.microsoft`` domain, which this and later ONNX Runtime versions on the CPU run,
but other runtimes may not.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import numpy as np

from servewell.errors import ConversionFailed, InvalidData, InvalidInput
from servewell.runtime.base import Array
from servewell.runtime.onnx import map_ort_errors
from servewell.settings import RuntimeSettings

logger = logging.getLogger(__name__)

Quantization = Literal["none", "dynamic-int8", "static-int8", "fp16"]
QUANTIZATIONS: tuple[Quantization, ...] = ("none", "dynamic-int8", "static-int8", "fp16")
#: Fewest calibration rows static int8 accepts: activation ranges from fewer are noise.
MIN_CALIBRATION_ROWS = 32
CALIBRATION_BATCH = 16

#: Operators ONNX Runtime's int8 quantizers have a form for (weights as initializers).
INT8_OPERATORS = frozenset(
    {
        "MatMul",
        "Gemm",
        "Conv",
        "ConvTranspose",
        "Gather",
        "Attention",
        "LSTM",
        "EmbedLayerNormalization",
    }
)
_INT8_TYPES = frozenset({2, 3})  # onnx.TensorProto.UINT8, INT8
_FP16_TYPE = 10  # onnx.TensorProto.FLOAT16
_FLOAT_TYPE = 1  # onnx.TensorProto.FLOAT


def check_quantization(name: str) -> Quantization:
    for known in QUANTIZATIONS:
        if name == known:
            return known
    raise InvalidInput(f"unknown quantization '{name}'; choose one of {', '.join(QUANTIZATIONS)}")


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


def quantize_file(
    source: Path,
    target: Path,
    method: Quantization,
    calibration: Sequence[Mapping[str, Array]] = (),
) -> Path:
    """Quantize ``source`` into ``target``; ``calibration`` (graph feeds) for static int8."""
    if method in ("dynamic-int8", "static-int8"):
        operators = describe_operators(source)
        if not INT8_OPERATORS.intersection(operators):
            raise _nothing_to_quantize(method, operators)
    try:
        with _quiet_quantizer():
            if method == "dynamic-int8":
                _dynamic_int8(source, target)
            elif method == "static-int8":
                _static_int8(source, target, calibration)
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


def calibration_batches(feeds: Iterator[Mapping[str, Array]]) -> list[dict[str, Array]]:
    """Materialise calibration feeds, refusing too few rows."""
    batches = [dict(feed) for feed in feeds]
    rows = sum(len(next(iter(feed.values()))) for feed in batches)
    if rows < MIN_CALIBRATION_ROWS:
        raise InvalidData(
            f"calibration data has {rows} rows; static int8 needs at least "
            f"{MIN_CALIBRATION_ROWS} to estimate activation ranges",
            rows=rows,
        )
    return batches


def graph_feeds(source: Path, inputs: Mapping[str, Array]) -> dict[str, Array]:
    """Named inputs (as a runtime takes them) -> what the ONNX graph's inputs take: raw
    columns as ``[rows, 1]``, text as ``str``."""
    import onnx

    model = onnx.load(str(source), load_external_data=False)
    initializers = {init.name for init in model.graph.initializer}
    feeds = {}
    for node in model.graph.input:
        if node.name in initializers:
            continue
        if node.name not in inputs:
            raise InvalidData(f"the calibration data lacks the graph input '{node.name}'")
        array = np.asarray(inputs[node.name])
        rank = len(node.type.tensor_type.shape.dim)
        if array.ndim == 1 and rank == 2:
            array = array.reshape(-1, 1)
        if node.type.tensor_type.elem_type == 8:  # onnx.TensorProto.STRING
            flat = [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in array.ravel()]
            array = np.array(flat, dtype=np.object_).reshape(array.shape)
        feeds[node.name] = array
    return feeds


def _dynamic_int8(source: Path, target: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        str(source),
        str(target),
        weight_type=QuantType.QInt8,
        extra_options={"DefaultTensorType": _FLOAT_TYPE},
    )


def _static_int8(source: Path, target: Path, calibration: Sequence[Mapping[str, Array]]) -> None:
    from onnxruntime.quantization import (
        CalibrationDataReader,
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
    quantize_static(
        str(source),
        str(target),
        Reader(),
        quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        extra_options={"DefaultTensorType": _FLOAT_TYPE},
    )


def _fp16(source: Path, target: Path) -> None:
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = onnx.load(str(source))
    converted = convert_float_to_float16(model, keep_io_types=True)
    onnx.save(converted, str(target))


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
    form = "float16" if method == "fp16" else "int8"
    return InvalidInput(
        f"{method} cannot shrink this model: none of its operators "
        f"({', '.join(operators)}) has weights with a {form} form in ONNX Runtime",
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
    """onnxruntime.quantization logs advice on the root logger; keep it at debug level."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.ERROR))
    try:
        yield
    finally:
        root.setLevel(level)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
