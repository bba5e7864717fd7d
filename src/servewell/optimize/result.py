"""What ``servewell optimize`` is asked, what it measured, and the gate it judges by."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from servewell.optimize.benchmark import BenchmarkPlan, Timing
from servewell.optimize.quantize import Quantization
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
    version: ModelVersion | None = None

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
