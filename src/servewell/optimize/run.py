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
from servewell.optimize.plan import (
    INT8,
    WEIGHTED,
    Int8Plan,
    Quantization,
    check_calibration_method,
    check_quantization,
    int8_operators,
)
from servewell.optimize.precision import Narrowing, narrow_to_float32
from servewell.optimize.quantize import optimize_graph, quantize_file, require_quantizable
from servewell.optimize.result import OptimizeOptions, OptimizeResult
from servewell.optimize.source import source_onnx
from servewell.optimize.verify import verify
from servewell.registration.register import RegisterOptions, register_file
from servewell.registry import ModelVersion, RegistryAccess
from servewell.registry.attachments import PROFILE_ROLE
from servewell.runtime.base import Array
from servewell.training.holdout import VALIDATION_ROLES, load_holdout

#: Attachments that describe the data rather than the model, so they carry over (with
#: the ``target`` parameter naming the validation split's label column).
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
    plan = _int8_plan(options, quantization)
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
        # a model with nothing to quantize is refused here, before calibration rows are read
        quantized_operators = require_quantizable(fp32, quantization, plan)
        calibration, calibration_source = None, None
        if quantization == "static-int8":
            stage("reading calibration rows")
            calibration, calibration_source = calibration_feeds(
                access, source, options.calibration_path, fp32, format
            )
        stage(f"optimizing the graph ({quantization})")
        candidate, narrowed = _build(fp32, work, quantization, plan, calibration, access)
        stage("verifying")
        result = verify(access, source, candidate, format, holdout, options, quantization, narrowed)
        result.calibration = calibration_source
        result.plan, result.quantized_operators = plan, quantized_operators
    return result


def register_optimized(
    access: RegistryAccess,
    result: OptimizeResult,
    alias: str | None = None,
    *,
    by: str | None = None,
) -> ModelVersion:
    """Register a result that passed its gate as the next version, parent = its source
    (``by``: who, the author of the ``alias`` move)."""
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
                    **_carried_params(source),
                    "optimize": {"source": str(source.ref), "quantization": result.quantization},
                },
                tags={**source.tags, "optimized": result.quantization},
                alias=alias,
                by=by,
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


def _int8_plan(options: OptimizeOptions, quantization: Quantization) -> Int8Plan | None:
    """How int8 is to be done, refusing an int8 option given to another method."""
    for flag, value, methods in (
        ("--operators", options.operators, INT8),
        ("--per-channel/--per-tensor", options.per_channel, INT8),
        ("--calibration", options.calibration_path, ("static-int8",)),
        ("--calibration-method", options.calibration_method, ("static-int8",)),
    ):
        if value is not None and quantization not in methods:
            raise InvalidInput(
                f"{flag} applies to {' and '.join(methods)} only, not to {quantization}"
            )
    if quantization not in INT8:
        return None
    plan = Int8Plan(
        operators=options.operators or WEIGHTED,
        per_channel=options.per_channel is not False,
        calibration_method=check_calibration_method(options.calibration_method or "minmax"),
    )
    int8_operators(quantization, plan.operators)  # an unknown operator type: refused now
    return plan


def _build(
    fp32: Path,
    work: Path,
    quantization: Quantization,
    plan: Int8Plan | None,
    calibration: list[dict[str, Array]] | None,
    access: RegistryAccess,
) -> tuple[Path, tuple[Path, Narrowing] | None]:
    """Narrow a float64 graph to float32 and quantize it (unless 'none'), then save ONNX
    Runtime's graph optimizations; the narrowed graph too, to be compared with the source."""
    if quantization == "none":
        return optimize_graph(fp32, work / "optimized.onnx", access.settings.runtime), None
    float32 = work / "float32.onnx"
    narrowing = narrow_to_float32(fp32, float32)
    source = float32 if narrowing is not None else fp32
    quantized = quantize_file(
        source, work / "quantized.onnx", quantization, calibration or (), plan
    )
    optimized = optimize_graph(quantized, work / "optimized.onnx", access.settings.runtime)
    return optimized, (float32, narrowing) if narrowing is not None else None


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


def _carried_params(source: ModelVersion) -> dict[str, Any]:
    """The label column of the carried validation split, so the child optimizes alike."""
    target = source.params.get("target")
    return {"target": target} if target is not None else {}


def _carried_attachments(access: RegistryAccess, source: ModelVersion) -> dict[str, bytes]:
    carried = {}
    for role in CARRIED_ATTACHMENTS:
        if source.has_artifact(role):
            artifact = source.artifact(role)
            carried[role] = access.artifacts.fetch(artifact.uri, artifact.sha256).read_bytes()
    return carried
