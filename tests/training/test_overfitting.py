"""Overfitting is judged on every measure that shows the gap, and says which one tripped;
a gap no wider than chance on a small validation split does not warn."""

import pytest

from servewell.stats import classification_metrics, regression_metrics
from servewell.training.config import ChecksConfig, parse_config
from servewell.training.data import dataset_from_frame
from servewell.training.overfitting import check_overfitting
from servewell.training.run import train_pipeline
from training_tables import accounts, sessions


def _overfitting(result):
    return next(c for c in result.checks if c.name == "overfitting")


def test_a_forest_that_learnt_a_rare_class_by_heart_warns() -> None:
    config = parse_config(
        {
            "target": "defaulted",
            "estimator": {"kind": "random_forest"},
            "checks": {"latency_rows": 10},
        }
    )
    result = train_pipeline(dataset_from_frame(accounts(4000, 0.03), "a"), config)
    check = _overfitting(result)
    measures = check.figures["measures"]
    assert measures["accuracy"]["gap"] < 0.05  # what the accuracy-only check judged by
    assert measures["recall of '1'"]["train"] == 1.0
    assert measures["recall of '1'"]["validation"] < 0.5
    assert check.status == "warn"
    assert {"recall of '1'", "roc_auc", "balanced_accuracy"} <= set(check.figures["tripped"])
    assert "accuracy" not in check.figures["tripped"]
    assert "recall of '1' (1.000 vs" in check.message
    assert "ROC-AUC (1.000 vs" in check.message
    assert measures["log_loss"]["validation"] > measures["log_loss"]["train"]


def test_a_well_fitted_model_on_plenty_of_rows_passes() -> None:
    config = parse_config(
        {"target": "clicked", "estimator": {"kind": "logistic"}, "checks": {"latency_rows": 10}}
    )
    check = _overfitting(train_pipeline(dataset_from_frame(sessions(4000), "s"), config))
    assert check.status == "pass", check.message
    assert "widest:" in check.message


def _binary(truth: list[int], guess: list[int]):
    return classification_metrics(truth, guess, labels=[0, 1])


def test_a_wide_gap_on_few_rows_is_chance_not_overfitting() -> None:
    train = _binary([0] * 400 + [1] * 400, [0] * 400 + [1] * 400)  # perfect
    few = _binary([0] * 5 + [1] * 5, [0, 0, 0, 0, 1, 1, 1, 1, 1, 0])  # 0.8 on ten rows
    many = _binary([0] * 500 + [1] * 500, [0] * 400 + [1] * 100 + [1] * 400 + [0] * 100)
    config = ChecksConfig()
    assert check_overfitting(train, few, config).status == "pass"
    warned = check_overfitting(train, many, config)
    assert warned.status == "warn"
    assert set(warned.figures["tripped"]) == {"accuracy", "balanced_accuracy", "recall of '0'"}


@pytest.mark.parametrize(("train_r2", "rows", "status"), [(0.99, 6, "pass"), (0.99, 2000, "warn")])
def test_regression_is_judged_on_r2(train_r2: float, rows: int, status: str) -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    truth = rng.normal(size=rows)
    train = regression_metrics(truth, truth * train_r2)
    validation = regression_metrics(truth, truth + rng.normal(0, 0.6, rows))  # R² ≈ 0.64
    check = check_overfitting(train, validation, ChecksConfig())
    assert check.status == status
    assert list(check.figures["measures"]) == ["r2"]
