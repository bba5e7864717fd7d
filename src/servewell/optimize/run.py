"""Optimize a registered version: convert to ONNX, quantize, verify, gate, register.

:func:`optimize_version` does everything up to and including the gate and registers
nothing; :func:`register_optimized` registers a result that passed, as the next version
of the same model with ``parent`` set to the source. The source is judged *as it is
served* (its ONNX conversion when it has one, loaded as the server loads it), so
"before" is what production runs now.

The source becomes an ONNX file first (:mod:`servewell.optimize.source`; a ``torch``
version through :mod:`servewell.export.torch`); verification runs both versions on the
evaluation rows (given, or the validation split recorded with the version) and times
them in alternating rounds (:mod:`servewell.optimize.verify`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from servewell.core.ref import ModelRef, check_alias
from servewell.errors import GateFailed, InvalidInput
from servewell.optimize.calibration import calibration_feeds
from servewell.optimize.quantize import (
    Quantization,
    check_quantization,
    optimize_graph,
    quantize_file,
)
from servewell.optimize.result import OptimizeOptions, OptimizeResult
from servewell.optimize.source import source_onnx
from servewell.optimize.verify import verify
from servewell.registration.register import RegisterOptions, register_file
from servewell.registry import ModelVersion, RegistryAccess
from servewell.runtime.base import Array
from servewell.training.holdout import PROFILE_ROLE, VALIDATION_ROLES, load_holdout

#: Attachments that describe the data rather than the model, so they carry over.
CARRIED_ATTACHMENTS = (PROFILE_ROLE, *VALIDATION_ROLES)

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
    quantization = _check_options(options)
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
        fp32, format = source_onnx(access, source, holdout, work)
        calibration, calibration_source = None, None
        if quantization == "static-int8":
            stage("reading calibration rows")
            calibration, calibration_source = calibration_feeds(
                access, source, options.calibration_path, fp32, format
            )
        stage(f"optimizing the graph ({quantization})")
        candidate = _build(fp32, work, quantization, calibration, access)
        stage("verifying")
        result = verify(access, source, candidate, format, holdout, options, quantization)
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


def _check_options(options: OptimizeOptions) -> Quantization:
    """Refuse what cannot be done before any work starts."""
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
    return quantization


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
