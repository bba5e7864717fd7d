"""The quality gate: thresholds from the pipeline file, each passed or failed by a margin."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from servewell.core.task import Task
from servewell.errors import InvalidConfig
from servewell.stats import ClassificationMetrics, RegressionMetrics
from servewell.training.checks import Check
from servewell.training.config import GateConfig

CLASSIFICATION_ONLY = (
    "min_accuracy",
    "min_precision",
    "min_recall",
    "min_f1",
    "min_roc_auc",
    "min_pr_auc",
    "max_log_loss",
)
REGRESSION_ONLY = ("max_mae", "max_rmse", "min_r2")
#: ROC-AUC applies to every classifier (one-vs-rest macro for more than two classes).
BINARY_ONLY = ("min_pr_auc",)
LATENCY = {"max_p50_ms": "p50_ms", "max_p99_ms": "p99_ms", "max_size_bytes": "size_bytes"}


@dataclass(frozen=True, slots=True)
class GateResult:
    """One threshold and how the model fared against it."""

    criterion: str
    threshold: float | None
    actual: float | None
    passed: bool
    message: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_gate_config(gate: GateConfig, task: Task, labels: Sequence[Any]) -> None:
    """Refuse thresholds that cannot apply to this target before any training happens."""
    given = {k for k, v in gate.model_dump().items() if v not in (None, (), [])}
    wrong = REGRESSION_ONLY if task == "classification" else CLASSIFICATION_ONLY
    for key in sorted(given.intersection(wrong)):
        raise InvalidConfig(f"gate.{key} does not apply to a {task} target")
    if task == "classification" and len(labels) != 2:
        for key in sorted(given.intersection(BINARY_ONLY)):
            raise InvalidConfig(
                f"gate.{key} applies to binary targets; this one has {len(labels)} classes"
            )
    names = [str(label) for label in labels]
    for key in ("min_precision", "min_recall", "min_f1"):
        value = getattr(gate, key)
        if isinstance(value, dict):
            for cls in value:
                if cls not in names:
                    raise InvalidConfig(
                        f"gate.{key} names class '{cls}', but the target's "
                        f"classes are {', '.join(names)}"
                    )


def evaluate_gate(
    gate: GateConfig, metrics: ClassificationMetrics | RegressionMetrics, checks: Sequence[Check]
) -> list[GateResult]:
    """Every configured threshold, checked; an empty gate gives an empty list (passes)."""
    results: list[GateResult] = []
    for key, threshold in gate.model_dump().items():
        if threshold is None or key == "block_on_warnings":
            continue
        if key in LATENCY:
            latency = next(c for c in checks if c.name == "latency")
            results.append(_compare(key, threshold, latency.figures[LATENCY[key]]))
        elif isinstance(threshold, dict):
            assert isinstance(metrics, ClassificationMetrics)
            measure = key.removeprefix("min_")
            for cls, value in threshold.items():
                actual = getattr(metrics.per_class[cls], measure)
                results.append(_compare(f"{key}[{cls}]", value, actual))
        else:
            results.append(_compare(key, threshold, _metric(metrics, key)))
    for check in checks:
        if check.name in gate.block_on_warnings:
            passed = check.status == "pass"
            message = f"check {check.name}: {'passed' if passed else 'warned: ' + check.message}"
            results.append(GateResult(f"no {check.name} warning", None, None, passed, message))
    return results


def failures(results: Sequence[GateResult]) -> list[str]:
    return [r.message for r in results if not r.passed]


class Gated:
    """What a gated run (training, optimize) says of its gate: passed, and why not."""

    __slots__ = ()
    gate: list[GateResult]

    @property
    def passed(self) -> bool:
        return all(result.passed for result in self.gate)

    @property
    def failures(self) -> list[str]:
        return failures(self.gate)


def _metric(metrics: ClassificationMetrics | RegressionMetrics, key: str) -> float | None:
    name = key.split("_", 1)[1]
    if isinstance(metrics, ClassificationMetrics) and name in ("precision", "recall", "f1"):
        figures = metrics.headline()
        return figures.get(name, figures[f"macro_{name}"])
    value = getattr(metrics, name, None)
    return None if value is None else float(value)


def _compare(criterion: str, threshold: float, actual: float | None) -> GateResult:
    name = criterion.split("_", 1)[1]
    if actual is None:
        return GateResult(criterion, threshold, None, False, f"{name} could not be measured")
    at_least = criterion.startswith("min_")
    passed = actual >= threshold if at_least else actual <= threshold
    sign = "≥" if at_least else "≤"
    if passed:
        return GateResult(
            criterion, threshold, actual, True, f"{name} {_fmt(actual)} {sign} {_fmt(threshold)}"
        )
    side = "short by" if at_least else "over by"
    return GateResult(
        criterion,
        threshold,
        actual,
        False,
        f"{name} {_fmt(actual)} is not {sign} {_fmt(threshold)} ({side} "
        f"{_fmt(abs(actual - threshold))})",
    )


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3f}"
