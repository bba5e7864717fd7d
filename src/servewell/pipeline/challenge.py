"""A challenger against its champion on the same rows: the gate's metrics, compared.

The metrics compared are the quality thresholds of the recorded gate (``min_accuracy``,
``min_recall[<class>]``, ``max_rmse``, ...; latency and size thresholds still gate the
challenger alone, since timings on a busy machine are no contest); a gate with none
compares the task's headline metric, accuracy for a classifier, R² for a regressor
(what cross-validation reports). The challenger wins when it is at least as good on
every one, give or take ``margin`` (in the metric's own units): a ``min_`` metric at
least the champion's less the margin, a ``max_`` one at most the champion's plus it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from servewell.core.task import Task
from servewell.training.config import GateConfig
from servewell.training.evaluate import Metrics
from servewell.training.gate import LATENCY, evaluate_gate

#: Equal figures computed along two paths may differ by rounding: that is a tie.
ROUNDING = 1e-9


@dataclass(frozen=True, slots=True)
class Compared:
    """One metric on both sides."""

    criterion: str
    metric: str
    champion: float | None
    challenger: float | None
    passed: bool
    message: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def compared_gate(gate: GateConfig, task: Task) -> GateConfig:
    """The recorded gate's quality thresholds, or the task's headline metric."""
    quality = gate.model_copy(update=dict.fromkeys(LATENCY) | {"block_on_warnings": ()})
    if any(value is not None for value in quality.model_dump().values() if value != ()):
        return quality
    return GateConfig(min_accuracy=0.0) if task == "classification" else GateConfig(min_r2=0.0)


def compare(
    gate: GateConfig, champion: Metrics, challenger: Metrics, margin: float
) -> list[Compared]:
    """Each of ``gate``'s metrics (:func:`compared_gate`), the champion's beside the
    challenger's, and whether the challenger holds its own."""
    theirs = {r.criterion: r.actual for r in evaluate_gate(gate, champion, [])}
    results = []
    for result in evaluate_gate(gate, challenger, []):
        criterion, mine = result.criterion, result.actual
        before = theirs.get(criterion)
        metric = criterion.split("_", 1)[1]
        higher = criterion.startswith("min_")
        if before is None:  # nothing to beat
            passed = mine is not None
        elif mine is None:
            passed = False
        else:
            slack = margin + ROUNDING
            passed = mine >= before - slack if higher else mine <= before + slack
        results.append(
            Compared(
                criterion, metric, before, mine, passed, _message(metric, before, mine, passed)
            )
        )
    return results


def _message(metric: str, champion: float | None, challenger: float | None, passed: bool) -> str:
    def text(value: float | None) -> str:
        return "not measured" if value is None else f"{value:.4f}"

    verdict = "holds" if passed else "loses"
    return f"{metric}: challenger {text(challenger)} vs champion {text(champion)} ({verdict})"
