"""Calibration rows for static int8: given as a file, or drawn from a version's reference
profile.

The training pipeline keeps a profile of every input column (:mod:`servewell.stats.profile`):
a histogram for numbers, frequencies for categories. Static quantization needs inputs
that span the ranges real traffic will have, not labels, so rows drawn column by column
from those distributions serve (columns independent of each other: enough to estimate
each activation's range, which is all calibration measures).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from servewell.core.datatypes import to_numpy_dtype
from servewell.errors import InvalidData, InvalidInput
from servewell.registry import ModelVersion, RegistryAccess
from servewell.registry.attachments import PROFILE_ROLE, read_attachment_json
from servewell.runtime.base import Array
from servewell.runtime.sklearn import INPUT_NAME, is_columnar
from servewell.training.data import load_dataset
from servewell.training.holdout import inputs_from_frame

SAMPLE_ROWS = 256
SEED = 0
#: Fewest calibration rows static int8 accepts: activation ranges from fewer are noise.
MIN_CALIBRATION_ROWS = 32
CALIBRATION_BATCH = 16


def calibration_feeds(
    access: RegistryAccess,
    source: ModelVersion,
    path: Path | None,
    fp32: Path,
    format: str,
) -> tuple[list[dict[str, Array]], str]:
    """Calibration feeds (graph inputs) and where they came from: the rows of ``path``
    (``--calibration``), else rows sampled from the version's reference profile."""
    if path is not None:
        frame = load_dataset(path).frame
        inputs = inputs_from_frame(frame, source.signature, str(path))
        described = f"{path} ({len(frame)} rows)"
    elif source.has_artifact(PROFILE_ROLE) and format == "onnx":
        inputs = sample_from_profile(read_attachment_json(access, source, PROFILE_ROLE), source)
        described = f"{len(next(iter(inputs.values())))} rows sampled from {PROFILE_ROLE}"
    else:
        raise InvalidInput(
            f"static int8 needs calibration rows and {source.name}@{source.version} has no "
            f"reference profile to sample them from; give --calibration DATA"
        )
    _require_rows(inputs)
    return _graph_batches(fp32, format, inputs, access), described


def _graph_batches(
    fp32: Path, format: str, inputs: Mapping[str, Array], access: RegistryAccess
) -> list[dict[str, Array]]:
    chunks = _whole_batches(inputs)
    if format != "text":
        return [graph_feeds(fp32, chunk) for chunk in chunks]
    from servewell.runtime.text import TextRuntime, to_texts

    runtime = TextRuntime(fp32, access.settings.runtime)
    runtime.load()
    try:
        name = runtime.describe().inputs[0].name
        return [runtime.encode(to_texts(chunk[name], name)) for chunk in chunks]
    finally:
        runtime.close()


def _whole_batches(inputs: Mapping[str, Array]) -> list[dict[str, Array]]:
    """``inputs`` in batches of :data:`CALIBRATION_BATCH` rows, the last one filled up with
    rows from the start: ONNX Runtime's histogram calibrators (entropy, percentile,
    distribution) stack every batch's activations into one array, which fails when the
    batches differ in size. Repeated rows move no minimum or maximum."""
    rows = len(next(iter(inputs.values())))
    batches = -(-rows // CALIBRATION_BATCH)
    order = np.arange(batches * CALIBRATION_BATCH) % rows
    return [
        {
            name: np.asarray(array)[order[start : start + CALIBRATION_BATCH]]
            for name, array in inputs.items()
        }
        for start in range(0, len(order), CALIBRATION_BATCH)
    ]


def sample_from_profile(
    profile: Any, version: ModelVersion, rows: int = SAMPLE_ROWS
) -> dict[str, Array]:
    """``rows`` synthetic input rows for ``version``, column by column from ``profile``."""
    features = profile.get("features") if isinstance(profile, dict) else None
    if not isinstance(features, dict):
        raise InvalidData("the reference profile has no 'features'; give --calibration DATA")
    rng = np.random.default_rng(SEED)
    signature = version.signature
    if not is_columnar(signature):
        names = list(signature.feature_names or ())
        columns = [_draw(features, name, rng, rows).astype(np.float64) for name in names]
        dtype = to_numpy_dtype(signature.inputs[0].datatype)
        return {INPUT_NAME: np.stack(columns, axis=1).astype(dtype)}
    inputs: dict[str, Array] = {}
    for spec in signature.inputs:
        values = _draw(features, spec.name, rng, rows)
        if spec.datatype == "BYTES":
            inputs[spec.name] = np.array([str(v).encode("utf-8") for v in values], dtype=object)
        else:
            inputs[spec.name] = values.astype(to_numpy_dtype(spec.datatype))
    return inputs


def _draw(features: dict[str, Any], name: str, rng: np.random.Generator, rows: int) -> Array:
    column = features.get(name)
    if not isinstance(column, dict):
        raise InvalidData(
            f"the reference profile has no column '{name}' to sample; give --calibration DATA"
        )
    if column.get("kind") == "categorical" and column.get("frequencies"):
        values = list(column["frequencies"])
        weights = np.array([column["frequencies"][v] for v in values], dtype=np.float64)
        return np.array(rng.choice(values, size=rows, p=weights / weights.sum()), dtype=object)
    histogram = column.get("histogram")
    if column.get("kind") == "numeric" and isinstance(histogram, dict):
        edges = np.asarray(histogram["edges"], dtype=np.float64)
        counts = np.asarray(histogram["counts"], dtype=np.float64)
        bins = rng.choice(len(counts), size=rows, p=counts / counts.sum())
        return np.asarray(rng.uniform(edges[bins], edges[bins + 1]))
    raise InvalidData(
        f"the reference profile of column '{name}' has no distribution to sample "
        "(a datetime or an empty column); give --calibration DATA"
    )


def _require_rows(inputs: Mapping[str, Array]) -> None:
    rows = len(next(iter(inputs.values())))
    if rows < MIN_CALIBRATION_ROWS:
        raise InvalidData(
            f"calibration data has {rows} rows; static int8 needs at least "
            f"{MIN_CALIBRATION_ROWS} to estimate activation ranges",
            rows=rows,
        )


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
