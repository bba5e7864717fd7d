"""Comparing a challenger with its champion (``pipeline/challenge.py``): the gate's
quality metrics (or the task's headline one), higher or lower being better, a margin
in the metric's units."""

from __future__ import annotations

import numpy as np
import pytest

from servewell.pipeline.challenge import compare, compared_gate
from servewell.stats import classification_metrics, regression_metrics
from servewell.training.config import GateConfig

TRUTH = np.array([0, 1] * 50)


def classifier(wrong: int) -> object:
    """Metrics of a classifier wrong on ``wrong`` of 100 rows."""
    predicted = TRUTH.copy()
    predicted[:wrong] = 1 - predicted[:wrong]
    return classification_metrics(TRUTH, predicted, labels=(0, 1), positive_label=1)


def test_an_empty_gate_compares_the_headline_metric() -> None:
    assert compared_gate(GateConfig(), "classification") == GateConfig(min_accuracy=0.0)
    assert compared_gate(GateConfig(), "regression") == GateConfig(min_r2=0.0)
    latency_only = GateConfig(max_p99_ms=5, block_on_warnings=("leakage",))
    assert compared_gate(latency_only, "classification") == GateConfig(min_accuracy=0.0)
    quality = compared_gate(GateConfig(min_f1={"1": 0.5}, max_p50_ms=1), "classification")
    assert quality == GateConfig(min_f1={"1": 0.5})


@pytest.mark.parametrize(
    ("champion_wrong", "challenger_wrong", "margin", "holds"),
    [(10, 10, 0.0, True), (10, 5, 0.0, True), (10, 12, 0.0, False), (10, 12, 0.02, True)],
)
def test_higher_is_better_within_the_margin(
    champion_wrong: int, challenger_wrong: int, margin: float, holds: bool
) -> None:
    gate = GateConfig(min_accuracy=0.0)
    [result] = compare(gate, classifier(champion_wrong), classifier(challenger_wrong), margin)  # type: ignore[arg-type]
    assert (result.metric, result.passed) == ("accuracy", holds)
    assert result.champion == pytest.approx(1 - champion_wrong / 100)
    assert result.challenger == pytest.approx(1 - challenger_wrong / 100)


def test_lower_is_better_for_an_error_and_per_class_thresholds() -> None:
    truth = np.linspace(0, 10, 50)
    champion = regression_metrics(truth, truth + 1.0)
    challenger = regression_metrics(truth, truth + 1.5)
    gate = GateConfig(max_rmse=9.0, min_r2=0.0)
    results = {r.metric: r for r in compare(gate, champion, challenger, 0.0)}
    assert not results["rmse"].passed
    assert not results["r2"].passed
    assert all(r.passed for r in compare(gate, champion, challenger, 0.6))
    assert all(r.passed for r in compare(gate, challenger, champion, 0.0))
    per_class = compare(GateConfig(min_recall={"1": 0.1}), classifier(0), classifier(20), 0.0)  # type: ignore[arg-type]
    assert [(r.criterion, r.passed) for r in per_class] == [("min_recall[1]", False)]
