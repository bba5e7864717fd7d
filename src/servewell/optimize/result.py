"""What ``servewell optimize`` is asked, what it measured, and the gate it judges by."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from servewell.optimize.benchmark import BenchmarkPlan, Timing
from servewell.optimize.plan import Int8Plan, Quantization
from servewell.optimize.precision import Narrowing
from servewell.registry import ModelVersion
from servewell.training.gate import Gated, GateResult


@dataclass(frozen=True)
class OptimizeOptions:
    """What ``servewell optimize`` is asked to do."""

    quantize: str = "dynamic-int8"
    to: str = "onnx"
    eval_path: Path | None = None
    target: str | None = None
    calibration_path: Path | None = None
    operators: str | None = None
    """int8: 'weighted' (when None), 'all', or operator types ('MatMul,Gemm')."""
    per_channel: bool | None = None
    """int8: one scale per output channel (when None) or per tensor (False)."""
    calibration_method: str | None = None
    """static int8: minmax (when None), entropy, percentile or distribution."""
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


@dataclass(frozen=True)
class Narrowed:
    """A float64 graph narrowed to float32 before quantizing, and how its predictions
    compare with the source's on the evaluation rows (before any quantization)."""

    narrowing: Narrowing
    label_agreement: float
    max_abs_diff: float

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.narrowing.to_dict(),
            "label_agreement": self.label_agreement,
            "max_abs_diff": self.max_abs_diff,
        }


@dataclass
class OptimizeResult(Gated):
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
    plan: Int8Plan | None = None
    """How int8 was done (None for fp16 and none)."""
    quantized_operators: tuple[str, ...] = ()
    """The source's operator types whose weights the quantization made smaller."""
    narrowed: Narrowed | None = None
    """Set when the source computed in float64 and was narrowed to float32 first."""
    version: ModelVersion | None = None

    def to_dict(self) -> dict[str, Any]:
        before, after = self.before, self.after
        return {
            "source": str(self.source.ref),
            "quantization": self.quantization,
            "format": self.format,
            "evaluation": {"source": self.evaluation, "rows": self.evaluation_rows},
            "calibration": self.calibration,
            "quantized_operators": list(self.quantized_operators),
            "int8": self.plan.to_dict(self.quantization) if self.plan else None,
            "narrowed": self.narrowed.to_dict() if self.narrowed else None,
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


def evaluate_optimize_gate(
    before: Side, after: Side, options: OptimizeOptions, quantization: Quantization
) -> list[GateResult]:
    """Accuracy at least ``min_accuracy``, at most ``max_accuracy_drop`` below before, and
    (when quantized) a smaller file: a model with fewer weights than a quantization adds
    (scales, zero points, quantize nodes) comes out larger and no faster."""
    gate = [_min_accuracy(after, options), _max_accuracy_drop(before, after, options)]
    if quantization != "none":
        gate.append(_smaller(before, after, quantization))
    return gate


def _min_accuracy(after: Side, options: OptimizeOptions) -> GateResult:
    accuracy, floor = after.accuracy, options.min_accuracy
    return GateResult(
        "min_accuracy",
        floor,
        accuracy,
        accuracy >= floor,
        f"accuracy {accuracy:.4f} >= {floor:.4f}"
        if accuracy >= floor
        else f"accuracy {accuracy:.4f} is {floor - accuracy:.4f} below --min-accuracy {floor:.4f}",
    )


def _max_accuracy_drop(before: Side, after: Side, options: OptimizeOptions) -> GateResult:
    drop, most = before.accuracy - after.accuracy, options.max_accuracy_drop
    return GateResult(
        "max_accuracy_drop",
        most,
        drop,
        drop <= most + 1e-12,
        f"accuracy drop {drop:.4f} <= {most:.4f}"
        if drop <= most + 1e-12
        else f"accuracy dropped {drop:.4f} ({before.accuracy:.4f} -> {after.accuracy:.4f}), "
        f"{drop - most:.4f} more than --max-accuracy-drop {most:.4f}",
    )


def _smaller(before: Side, after: Side, quantization: Quantization) -> GateResult:
    old, new = before.size_bytes, after.size_bytes
    return GateResult(
        "smaller",
        float(old),
        float(new),
        new < old,
        f"size {new:,} bytes < {old:,} before"
        if new < old
        else f"{quantization} made the file larger ({old:,} -> {new:,} bytes): the model has "
        f"too few weights for it; --quantize none keeps them as they are",
    )
