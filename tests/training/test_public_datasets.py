"""Public data sets shipped offline by packages (scikit-learn's bundled sets, Palmer
penguins with its missing values and categories): the default pipeline trains on each,
its figures equal scikit-learn's, the leakage check stays quiet on them, and it speaks up
when a leak is planted in them."""

from collections.abc import Callable

import palmerpenguins
import pandas as pd
import pytest
from sklearn import datasets
from sklearn import metrics as skm

from servewell.stats import ClassificationMetrics, RegressionMetrics
from servewell.training.config import parse_config
from servewell.training.data import dataset_from_frame
from servewell.training.result import PipelineResult
from servewell.training.run import train_pipeline
from training_tables import in_target_order, noisy_copy


def _sklearn(loader: Callable[..., object]) -> Callable[[], pd.DataFrame]:
    return lambda: loader(as_frame=True).frame  # type: ignore[attr-defined]


#: name -> (table, target, pipeline overrides); the default estimator unless it is slow.
PUBLIC = {
    "breast cancer": (_sklearn(datasets.load_breast_cancer), "target", {}),
    "wine": (_sklearn(datasets.load_wine), "target", {}),
    "iris": (_sklearn(datasets.load_iris), "target", {}),
    "digits": (_sklearn(datasets.load_digits), "target", {"estimator": {"kind": "logistic"}}),
    "diabetes": (_sklearn(datasets.load_diabetes), "target", {}),
    "penguins species": (palmerpenguins.load_penguins, "species", {}),
    "penguins sex, imputed": (
        palmerpenguins.load_penguins,
        "sex",
        {"cleaning": {"missing": "impute"}},
    ),
    "penguins island, imputed": (
        palmerpenguins.load_penguins,
        "island",
        {"cleaning": {"missing": "impute"}},
    ),
    "penguins body mass, imputed": (
        palmerpenguins.load_penguins,
        "body_mass_g",
        {"cleaning": {"missing": "impute"}},
    ),
}


def _train(frame: pd.DataFrame, target: str, **overrides: object) -> PipelineResult:
    config = parse_config(
        {"name": "public", "target": target, "checks": {"latency_rows": 10}} | overrides
    )
    return train_pipeline(dataset_from_frame(frame, "public"), config)


@pytest.mark.parametrize("name", PUBLIC)
def test_no_leakage_alarm_and_scikit_learn_figures(name: str) -> None:
    load, target, overrides = PUBLIC[name]
    result = _train(load(), target, **overrides)
    leakage = next(c for c in result.checks if c.name == "leakage")
    assert leakage.status == "pass", leakage.message
    assert not any(score["suspect"] for score in leakage.figures["features"])
    _assert_equals_scikit_learn(result)


def _assert_equals_scikit_learn(result: PipelineResult) -> None:
    truth, predicted = result.validation_truth, result.validation_predictions
    if isinstance(result.metrics, RegressionMetrics):
        assert result.metrics.r2 == pytest.approx(skm.r2_score(truth, predicted.value))
        assert result.metrics.mae == pytest.approx(skm.mean_absolute_error(truth, predicted.value))
        return
    metrics, proba, labels = result.metrics, predicted.probabilities, list(result.labels)
    assert isinstance(metrics, ClassificationMetrics)
    assert metrics.accuracy == pytest.approx(skm.accuracy_score(truth, predicted.label))
    assert metrics.balanced_accuracy == pytest.approx(
        skm.balanced_accuracy_score(truth, predicted.label)
    )
    assert metrics.log_loss == pytest.approx(skm.log_loss(truth, proba, labels=labels))
    if len(labels) == 2:
        positive = proba[:, 1]
        assert metrics.roc_auc == pytest.approx(skm.roc_auc_score(truth == labels[1], positive))
        assert metrics.brier_score == pytest.approx(
            skm.brier_score_loss(truth == labels[1], positive)
        )
        return
    for average, value in (("macro", metrics.roc_auc), ("weighted", metrics.roc_auc_weighted)):
        expected = skm.roc_auc_score(truth, proba, multi_class="ovr", average=average)
        assert value == pytest.approx(expected, abs=1e-12)
    assert metrics.brier_score == pytest.approx(skm.brier_score_loss(truth, proba, labels=labels))


def test_a_noisy_copy_planted_in_breast_cancer_is_caught() -> None:
    frame = datasets.load_breast_cancer(as_frame=True).frame
    frame["diagnosis_code"] = noisy_copy(frame["target"], share=0.02)
    leakage = next(c for c in _train(frame, "target").checks if c.name == "leakage")
    assert leakage.status == "warn"
    assert "'diagnosis_code' alone predicts the target" in leakage.message
    assert [s["column"] for s in leakage.figures["features"] if s["suspect"]] == ["diagnosis_code"]


def test_an_id_in_species_order_planted_in_penguins_is_caught_when_kept() -> None:
    frame = palmerpenguins.load_penguins()
    frame["tag"] = in_target_order(frame["species"])
    left_out = _train(frame, "species")
    assert "tag" not in left_out.plan.inputs  # an identifier: not a feature by default
    kept = _train(frame, "species", columns={"tag": "numeric"})
    leakage = next(c for c in kept.checks if c.name == "leakage")
    assert leakage.status == "warn"
    assert "'tag' alone predicts the target" in leakage.message


def test_an_id_in_target_order_planted_in_diabetes_is_caught_when_kept() -> None:
    frame = datasets.load_diabetes(as_frame=True).frame
    frame["record"] = in_target_order(frame["target"])
    leakage = next(
        c
        for c in _train(frame, "target", columns={"record": "numeric"}).checks
        if c.name == "leakage"
    )
    assert leakage.status == "warn"
    assert "'record' alone predicts the target out of sample (R²" in leakage.message
