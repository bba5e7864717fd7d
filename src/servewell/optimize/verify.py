"""Both versions run on the evaluation rows and timed side by side: label agreement, the
largest difference of any class probability, every classification metric, the artifact
size, and in-process latency (:mod:`servewell.optimize.benchmark`). A float64 source
narrowed to float32 before quantizing has that step compared with the source too, so a
loss shows whether float32 or the quantization caused it."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from servewell.errors import InvalidData
from servewell.optimize.benchmark import time_runtimes
from servewell.optimize.plan import Quantization
from servewell.optimize.precision import Narrowing
from servewell.optimize.result import (
    Narrowed,
    OptimizeOptions,
    OptimizeResult,
    Side,
    evaluate_optimize_gate,
)
from servewell.registry import ModelVersion, RegistryAccess
from servewell.runtime import Runtime, create_runtime
from servewell.runtime.base import Array
from servewell.serving.loading import open_runtime, serving_artifact_role
from servewell.stats import classification_metrics
from servewell.training.holdout import Holdout

#: Evaluation rows are predicted in chunks of this many, to bound memory.
PREDICT_CHUNK = 256


def verify(
    access: RegistryAccess,
    source: ModelVersion,
    candidate: Path,
    format: str,
    holdout: Holdout,
    options: OptimizeOptions,
    quantization: Quantization,
    narrowed: tuple[Path, Narrowing] | None = None,
) -> OptimizeResult:
    """The source as it serves and the ``candidate`` file, measured on ``holdout``, gated;
    ``narrowed`` (the float32 graph the candidate was quantized from) compared too."""
    role = serving_artifact_role(source, access.settings.runtime.prefer_onnx)
    before_runtime = open_runtime(access, source)  # the source as it serves now
    after_runtime = create_runtime(format, candidate, access.settings.runtime, source.signature)
    after_runtime.load()
    try:
        before_out = _predict_all(before_runtime, holdout.inputs)
        after_out = _predict_all(after_runtime, holdout.inputs)
        narrowed_check = (
            _compare_narrowed(access, source, format, holdout, before_out, *narrowed)
            if narrowed is not None
            else None
        )
        before_timing, after_timing = time_runtimes(
            [before_runtime, after_runtime], holdout.inputs, options.benchmark
        )
    finally:
        before_runtime.close()
        after_runtime.close()
    labels = source.signature.class_labels
    before = Side(
        format=source.artifact(role).format,
        size_bytes=source.artifact(role).size_bytes,
        metrics=_metrics(holdout, before_out, labels),
        timing=before_timing,
    )
    after = Side(
        format=format,
        size_bytes=candidate.stat().st_size,
        metrics=_metrics(holdout, after_out, labels),
        timing=after_timing,
    )
    return OptimizeResult(
        source=source,
        quantization=quantization,
        format=format,
        artifact=candidate.read_bytes(),
        before=before,
        after=after,
        label_agreement=_label_agreement(before_out, after_out),
        max_abs_diff=_max_abs_diff(before_out, after_out),
        evaluation=holdout.source,
        evaluation_rows=holdout.rows,
        calibration=None,
        gate=evaluate_optimize_gate(before, after, options, quantization),
        narrowed=narrowed_check,
    )


def _compare_narrowed(
    access: RegistryAccess,
    source: ModelVersion,
    format: str,
    holdout: Holdout,
    before_out: Mapping[str, Array],
    path: Path,
    narrowing: Narrowing,
) -> Narrowed:
    runtime = create_runtime(format, path, access.settings.runtime, source.signature)
    runtime.load()
    try:
        outputs = _predict_all(runtime, holdout.inputs)
    finally:
        runtime.close()
    return Narrowed(
        narrowing=narrowing,
        label_agreement=_label_agreement(before_out, outputs),
        max_abs_diff=_max_abs_diff(before_out, outputs),
    )


def _label_agreement(one: Mapping[str, Array], other: Mapping[str, Array]) -> float:
    return float(np.mean(one["label"] == other["label"]))


def _max_abs_diff(one: Mapping[str, Array], other: Mapping[str, Array]) -> float:
    return float(np.max(np.abs(one["probabilities"] - other["probabilities"])))


def _predict_all(runtime: Runtime, inputs: Mapping[str, Array]) -> dict[str, Array]:
    rows = len(next(iter(inputs.values())))
    parts = [
        runtime.predict({n: a[start : start + PREDICT_CHUNK] for n, a in inputs.items()})
        for start in range(0, rows, PREDICT_CHUNK)
    ]
    return {
        "label": np.concatenate([p["label"] for p in parts]),
        "probabilities": np.concatenate([p["probabilities"] for p in parts]).astype(np.float64),
    }


def _metrics(
    holdout: Holdout, outputs: Mapping[str, Array], labels: tuple[str | int, ...] | None
) -> dict[str, float]:
    try:
        metrics = classification_metrics(
            holdout.truth, outputs["label"], labels=labels, probabilities=outputs["probabilities"]
        )
    except (ValueError, KeyError) as exc:
        raise InvalidData(f"cannot score {holdout.source}: {exc}") from exc
    return metrics.headline()
