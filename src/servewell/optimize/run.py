"""Optimize a registered version: convert to ONNX, quantize, verify, gate, register.

:func:`optimize_version` does everything up to and including the gate and registers
nothing; :func:`register_optimized` registers a result that passed, as the next version
of the same model with ``parent`` set to the source. The source is judged *as it is
served* (its ONNX conversion when it has one), so "before" is what production runs now.

A ``torch`` version is exported with ``torch.onnx.export``
(:mod:`servewell.export.torch`), traced on the first evaluation rows.

Verification runs both versions on the evaluation rows (given, or the validation split
recorded with the version): label agreement, the largest difference of any class
probability, every classification metric (:mod:`servewell.stats`), the artifact size,
and in-process latency (p50/p99 of one row, rows per second in batches of 32), timed in
alternating rounds (:mod:`servewell.optimize.benchmark`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import numpy as np

from servewell.core.ref import ModelRef, check_alias
from servewell.errors import ConversionFailed, GateFailed, InvalidData, InvalidInput
from servewell.optimize.benchmark import BenchmarkPlan, Timing, time_runtimes
from servewell.optimize.quantize import (
    CALIBRATION_BATCH,
    Quantization,
    calibration_batches,
    check_quantization,
    graph_feeds,
    optimize_graph,
    quantize_file,
)
from servewell.registration.convert import convert_sklearn
from servewell.registration.register import RegisterOptions, register_file
from servewell.registry import ONNX, ORIGINAL, ModelVersion, RegistryAccess
from servewell.runtime import Runtime, create_runtime
from servewell.runtime.base import Array
from servewell.runtime.sklearn import SklearnRuntime
from servewell.stats import classification_metrics
from servewell.training.gate import GateResult
from servewell.training.holdout import (
    PROFILE_ROLE,
    VALIDATION_ROLES,
    Holdout,
    inputs_from_frame,
    load_holdout,
)

logger = logging.getLogger(__name__)

#: Evaluation rows are predicted in chunks of this many, to bound memory.
PREDICT_CHUNK = 256
#: Rows a torch module is traced on when exported (more than one: the batch stays dynamic).
EXPORT_ROWS = 8
#: Attachments that describe the data rather than the model, so they carry over.
CARRIED_ATTACHMENTS = (PROFILE_ROLE, *VALIDATION_ROLES)
#: Formats whose artifact is an ONNX graph that optimize can work on as it is.
ONNX_FORMATS = ("onnx", "text")


@dataclass(frozen=True)
class OptimizeOptions:
    """What ``servewell optimize`` is asked to do."""

    quantize: str = "dynamic-int8"
    to: str = "onnx"
    eval_path: Path | None = None
    target: str | None = None
    calibration_path: Path | None = None
    min_accuracy: float = 0.90
    max_accuracy_drop: float = 0.01
    alias: str | None = None
    benchmark: BenchmarkPlan = field(default_factory=BenchmarkPlan)


@dataclass(frozen=True)
class Side:
    """One version as measured: before (the source) or after (the candidate)."""

    format: str
    size_bytes: int
    metrics: dict[str, float]
    timing: Timing

    @property
    def accuracy(self) -> float:
        return self.metrics["accuracy"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "size_bytes": self.size_bytes,
            "metrics": self.metrics,
            **self.timing.to_dict(),
        }


@dataclass
class OptimizeResult:
    """Everything an optimization produced; ``version`` is set once it is registered."""

    source: ModelVersion
    quantization: Quantization
    format: str
    artifact: bytes
    before: Side
    after: Side
    label_agreement: float
    max_abs_diff: float
    evaluation: str
    evaluation_rows: int
    calibration: str | None
    gate: list[GateResult]
    version: ModelVersion | None = None

    @property
    def passed(self) -> bool:
        return all(result.passed for result in self.gate)

    @property
    def failures(self) -> list[str]:
        return [result.message for result in self.gate if not result.passed]

    def to_dict(self) -> dict[str, Any]:
        before, after = self.before, self.after
        return {
            "source": str(self.source.ref),
            "quantization": self.quantization,
            "format": self.format,
            "evaluation": {"source": self.evaluation, "rows": self.evaluation_rows},
            "calibration": self.calibration,
            "before": before.to_dict(),
            "after": after.to_dict(),
            "label_agreement": self.label_agreement,
            "max_abs_diff": self.max_abs_diff,
            "change": {
                "size_reduction": 1 - after.size_bytes / before.size_bytes,
                "accuracy_drop": before.accuracy - after.accuracy,
                "p50_speedup": before.timing.p50_ms / max(after.timing.p50_ms, 1e-9),
                "p99_speedup": before.timing.p99_ms / max(after.timing.p99_ms, 1e-9),
                "throughput_speedup": after.timing.throughput_rows_s
                / max(before.timing.throughput_rows_s, 1e-9),
            },
            "gate": [result.to_dict() for result in self.gate],
            "passed": self.passed,
        }


Stage = Callable[[str], None]


def optimize_version(
    access: RegistryAccess,
    ref: ModelRef,
    options: OptimizeOptions | None = None,
    on_stage: Stage | None = None,
) -> OptimizeResult:
    """Convert, quantize, verify and gate ``ref``; nothing is registered."""
    options = options or OptimizeOptions()
    stage = on_stage or (lambda _: None)
    quantization = check_quantization(options.quantize)
    if options.to != "onnx":
        raise InvalidInput(f"optimize converts to 'onnx' only, not '{options.to}'")
    if options.alias is not None:
        check_alias(options.alias)
    for flag, value in (
        ("--min-accuracy", options.min_accuracy),
        ("--max-accuracy-drop", options.max_accuracy_drop),
    ):
        if not 0 <= value <= 1:  # NaN too
            raise InvalidInput(f"{flag} is {value}; give a fraction 0 to 1")
    source = access.registry.resolve(ref)
    if source.signature.class_labels is None:
        raise InvalidInput(
            f"{source.name}@{source.version} is not a classifier: optimize gates on accuracy"
        )
    stage("loading evaluation data")
    holdout = load_holdout(access, source, options.eval_path, options.target)
    with TemporaryDirectory() as folder:
        work = Path(folder)
        stage("converting to ONNX")
        fp32, format = _source_onnx(access, source, holdout, work)
        calibration, calibration_source = None, None
        if quantization == "static-int8":
            stage("reading calibration rows")
            calibration, calibration_source = _calibration(access, source, options, fp32, format)
        stage(f"optimizing the graph ({quantization})")
        candidate = _build(fp32, work, quantization, calibration, access)
        stage("verifying")
        result = _verify(access, source, candidate, format, holdout, options, quantization)
        result.calibration = calibration_source
    return result


def register_optimized(
    access: RegistryAccess, result: OptimizeResult, alias: str | None = None
) -> ModelVersion:
    """Register a result that passed its gate as the next version, parent = its source."""
    if not result.passed:
        raise GateFailed(result.failures)
    source = result.source
    with TemporaryDirectory() as folder:
        path = Path(folder) / f"{source.name}.onnx"
        path.write_bytes(result.artifact)
        report = result.to_dict()
        version = register_file(
            access,
            path,
            source.name,
            format=result.format,
            options=RegisterOptions(
                signature=source.signature,
                metrics=_registry_metrics(result, report),
                params={
                    "optimize": {"source": str(source.ref), "quantization": result.quantization}
                },
                tags={**source.tags, "optimized": result.quantization},
                alias=alias,
                parent=source.ref,
                description=f"{source.name}@{source.version} optimized ({result.quantization})",
                convert=False,
                attachments={
                    **_carried_attachments(access, source),
                    "optimization.json": json.dumps(report, indent=2).encode("utf-8"),
                },
            ),
        )
    result.version = version
    return version


# --- stages -----------------------------------------------------------------------------------


def _source_onnx(
    access: RegistryAccess, source: ModelVersion, holdout: Holdout, work: Path
) -> tuple[Path, str]:
    """The source as an ONNX file (its own, its stored conversion, or converted now)."""
    target = work / "source.onnx"
    if source.format in ONNX_FORMATS or source.has_artifact(ONNX):
        role = ORIGINAL if source.format in ONNX_FORMATS else ONNX
        artifact = source.artifact(role)
        target.write_bytes(access.artifacts.fetch(artifact.uri, artifact.sha256).read_bytes())
        return target, "text" if source.format == "text" else "onnx"
    if source.format == "torch":
        return _export_torch(access, source, holdout, target), "onnx"
    if source.format != "sklearn":
        raise ConversionFailed(f"optimize cannot convert a '{source.format}' version to ONNX")
    runtime = _open(access, source, ORIGINAL)
    assert isinstance(runtime, SklearnRuntime)
    conversion = convert_sklearn(runtime.estimator, source.signature, holdout.head(PREDICT_CHUNK))
    runtime.close()
    target.write_bytes(conversion.onnx_bytes)
    return target, "onnx"


def _export_torch(
    access: RegistryAccess, source: ModelVersion, holdout: Holdout, target: Path
) -> Path:
    """A torch version's module, traced on evaluation rows, as ONNX."""
    from servewell.export.torch import export_torch_model
    from servewell.runtime.torch import TorchRuntime

    runtime = _open(access, source, ORIGINAL)
    assert isinstance(runtime, TorchRuntime)
    try:
        return export_torch_model(
            runtime.module, source.signature, holdout.head(EXPORT_ROWS), target
        )
    finally:
        runtime.close()


def _build(
    fp32: Path,
    work: Path,
    quantization: Quantization,
    calibration: list[dict[str, Array]] | None,
    access: RegistryAccess,
) -> Path:
    """Quantize (unless 'none'), then save ONNX Runtime's graph optimizations."""
    quantized = fp32
    if quantization != "none":
        quantized = quantize_file(fp32, work / "quantized.onnx", quantization, calibration or ())
    return optimize_graph(quantized, work / "optimized.onnx", access.settings.runtime)


def _calibration(
    access: RegistryAccess,
    source: ModelVersion,
    options: OptimizeOptions,
    fp32: Path,
    format: str,
) -> tuple[list[dict[str, Array]], str]:
    """Calibration feeds: ``--calibration`` rows, else rows sampled from the profile."""
    if options.calibration_path is not None:
        from servewell.training.data import load_dataset

        frame = load_dataset(options.calibration_path).frame
        inputs = inputs_from_frame(frame, source.signature, str(options.calibration_path))
        described = f"{options.calibration_path} ({len(frame)} rows)"
    elif source.has_artifact(PROFILE_ROLE) and format == "onnx":
        from servewell.optimize.calibration import sample_from_profile

        inputs = sample_from_profile(_attachment_json(access, source, PROFILE_ROLE), source)
        described = f"{len(next(iter(inputs.values())))} rows sampled from {PROFILE_ROLE}"
    else:
        raise InvalidInput(
            f"static int8 needs calibration rows and {source.name}@{source.version} has no "
            f"reference profile to sample them from; give --calibration DATA"
        )
    feeds = _graph_batches(fp32, format, inputs, access)
    return calibration_batches(iter(feeds)), described


def _graph_batches(
    fp32: Path, format: str, inputs: Mapping[str, Array], access: RegistryAccess
) -> list[dict[str, Array]]:
    rows = len(next(iter(inputs.values())))
    chunks = [
        {name: array[start : start + CALIBRATION_BATCH] for name, array in inputs.items()}
        for start in range(0, rows, CALIBRATION_BATCH)
    ]
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


def _verify(
    access: RegistryAccess,
    source: ModelVersion,
    candidate: Path,
    format: str,
    holdout: Holdout,
    options: OptimizeOptions,
    quantization: Quantization,
) -> OptimizeResult:
    role = ONNX if access.settings.runtime.prefer_onnx and source.has_artifact(ONNX) else ORIGINAL
    before_runtime = _open(access, source, role)
    after_runtime = create_runtime(format, candidate, access.settings.runtime, source.signature)
    after_runtime.load()
    try:
        before_out = _predict_all(before_runtime, holdout.inputs)
        after_out = _predict_all(after_runtime, holdout.inputs)
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
        label_agreement=float(np.mean(before_out["label"] == after_out["label"])),
        max_abs_diff=float(
            np.max(np.abs(before_out["probabilities"] - after_out["probabilities"]))
        ),
        evaluation=holdout.source,
        evaluation_rows=holdout.rows,
        calibration=None,
        gate=evaluate_optimize_gate(before, after, options),
    )


def evaluate_optimize_gate(before: Side, after: Side, options: OptimizeOptions) -> list[GateResult]:
    """Accuracy at least ``min_accuracy``, and at most ``max_accuracy_drop`` below before."""
    accuracy, floor = after.accuracy, options.min_accuracy
    drop, most = before.accuracy - after.accuracy, options.max_accuracy_drop
    return [
        GateResult(
            "min_accuracy",
            floor,
            accuracy,
            accuracy >= floor,
            f"accuracy {accuracy:.4f} >= {floor:.4f}"
            if accuracy >= floor
            else f"accuracy {accuracy:.4f} is {floor - accuracy:.4f} below --min-accuracy "
            f"{floor:.4f}",
        ),
        GateResult(
            "max_accuracy_drop",
            most,
            drop,
            drop <= most + 1e-12,
            f"accuracy drop {drop:.4f} <= {most:.4f}"
            if drop <= most + 1e-12
            else f"accuracy dropped {drop:.4f} ({before.accuracy:.4f} -> {accuracy:.4f}), "
            f"{drop - most:.4f} more than --max-accuracy-drop {most:.4f}",
        ),
    ]


# --- helpers ----------------------------------------------------------------------------------


def _open(access: RegistryAccess, version: ModelVersion, role: str) -> Runtime:
    artifact = version.artifact(role)
    path = access.artifacts.fetch(artifact.uri, artifact.sha256)
    runtime = create_runtime(artifact.format, path, access.settings.runtime, version.signature)
    runtime.load()
    return runtime


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


def _registry_metrics(result: OptimizeResult, report: dict[str, Any]) -> dict[str, Any]:
    after = result.after
    return {
        **after.metrics,
        "label_agreement": result.label_agreement,
        "max_abs_diff": result.max_abs_diff,
        "size_bytes": after.size_bytes,
        "p50_ms": after.timing.p50_ms,
        "p99_ms": after.timing.p99_ms,
        "throughput_rows_s": after.timing.throughput_rows_s,
        "evaluation_rows": result.evaluation_rows,
        "optimization": report,
    }


def _carried_attachments(access: RegistryAccess, source: ModelVersion) -> dict[str, bytes]:
    carried = {}
    for role in CARRIED_ATTACHMENTS:
        if source.has_artifact(role):
            artifact = source.artifact(role)
            carried[role] = access.artifacts.fetch(artifact.uri, artifact.sha256).read_bytes()
    return carried


def _attachment_json(access: RegistryAccess, version: ModelVersion, role: str) -> Any:
    artifact = version.artifact(role)
    data = access.artifacts.fetch(artifact.uri, artifact.sha256).read_bytes()
    try:
        return json.loads(data)
    except json.JSONDecodeError as exc:
        raise InvalidData(f"{version.name}@{version.version}'s {role} is not JSON") from exc
