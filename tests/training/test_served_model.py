"""The served model is the validated model: a conversion is kept only when it computes what
the pipeline computes on the validation rows (a regressor within 0.1 % of the target's
scale), and the version is registered with the served artifact's metrics, which
``evaluate`` then reproduces."""

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from servewell.core.ref import ModelRef
from servewell.registration.agreement import MAX_RELATIVE_DIFF, compare_outputs
from servewell.registration.convert import convert_sklearn
from servewell.serving.loading import open_runtime
from servewell.training.data import dataset_from_frame
from servewell.training.evaluate import evaluate_runtime
from servewell.training.run import run_pipeline
from servewell.training.signature import to_inputs
from training_tables import sessions


def _diabetes() -> pd.DataFrame:
    """scikit-learn's bundled diabetes table (442 patients, 10 numbers, a disease score)."""
    from sklearn.datasets import load_diabetes

    frame = load_diabetes(as_frame=True).frame
    return frame.rename(columns={"target": "progression"})


def _houses(rows: int = 600) -> pd.DataFrame:
    """Generated: prices in the hundreds of thousands, a rooms count, a district name."""
    rng = np.random.default_rng(5)
    area = rng.uniform(30, 250, rows)
    rooms = rng.integers(1, 7, rows)
    district = rng.choice(["north", "south", "centre"], rows)
    bonus = np.select([district == "centre", district == "north"], [90_000, 20_000], 0)
    price = 3_100 * area + 12_000 * rooms + bonus + rng.normal(0, 15_000, rows)
    return pd.DataFrame({"area": area, "rooms": rooms, "district": district, "price": price})


@pytest.mark.parametrize(
    ("name", "table", "target"),
    [("diabetes", _diabetes, "progression"), ("houses", _houses, "price")],
)
def test_a_boosted_regressor_serves_what_was_validated(
    sqlite_services, make_config, name, table, target
) -> None:
    frame = table()
    config = make_config(
        name=name,
        target=target,
        task="regression",
        estimator={"kind": "gradient_boosting", "params": {"n_estimators": 150}},
        gate={},
    )
    result = run_pipeline(dataset_from_frame(frame, name), config, sqlite_services)
    version = sqlite_services.registry.resolve(ModelRef.parse(name))
    assert version.has_artifact("onnx")
    validation = result.validation_frame
    runtime = open_runtime(sqlite_services, version)
    served = runtime.predict(to_inputs(validation, version.signature))["variable"].ravel()
    local = result.model.predict(validation.drop(columns=target))
    scale = float(np.std(result.validation_truth))
    # float32 all the way differs by several units of the target here (thresholds and
    # scaled inputs rounded): the version serves a conversion that does not.
    assert np.max(np.abs(served - local)) <= MAX_RELATIVE_DIFF * scale
    assert version.metrics["onnx_max_abs_diff"] <= version.metrics["onnx_tolerance"]

    truth = validation[target].to_numpy()
    evaluation = evaluate_runtime(runtime, validation, target)
    for metric in ("mae", "rmse", "r2"):
        assert evaluation.metrics.headline()[metric] == pytest.approx(version.metrics[metric])
    assert version.metrics["mae"] == pytest.approx(skm.mean_absolute_error(truth, served))
    assert version.metrics["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(truth, served)))
    assert evaluation.rows == len(validation)


def test_the_float32_conversion_of_a_boosted_regressor_is_not_faithful(make_config) -> None:
    """What the gate catches: on the diabetes rows the float32 graph drifts by more than
    the tolerance, so the conversion kept is float64."""
    from servewell.training.run import train_pipeline

    config = make_config(
        name="diabetes",
        target="progression",
        task="regression",
        estimator={"kind": "gradient_boosting", "params": {"n_estimators": 150}},
        gate={},
    )
    result = train_pipeline(dataset_from_frame(_diabetes(), "diabetes"), config)
    scale = float(np.std(result.validation_truth))
    conversion = convert_sklearn(result.model, result.signature, result.sample, target_scale=scale)
    assert conversion.precision == "double"
    assert conversion.sample_rows == len(result.validation_truth)


def test_a_classifier_conversion_is_checked_on_probabilities_not_only_labels() -> None:
    original = {"label": np.array([0, 1]), "probabilities": np.array([[0.9, 0.1], [0.4, 0.6]])}
    close = {"label": np.array([0, 1]), "probabilities": np.array([[0.9, 0.1], [0.4001, 0.5999]])}
    drifted = {"label": np.array([0, 1]), "probabilities": np.array([[0.8, 0.2], [0.4, 0.6]])}
    assert compare_outputs(original, close).faithful
    verdict = compare_outputs(original, drifted)
    assert not verdict.faithful
    assert "differs by up to 0.1 in 'probabilities' on 2 rows" in verdict.describe()


def test_a_regressor_tolerance_follows_the_target_scale() -> None:
    original = {"variable": np.array([[100_000.0], [300_000.0]])}
    off_by_five = {"variable": np.array([[100_005.0], [300_000.0]])}
    assert compare_outputs(original, off_by_five, target_scale=100_000.0).faithful
    assert not compare_outputs(original, off_by_five, target_scale=1.0).faithful
    assert compare_outputs(original, off_by_five).tolerance == pytest.approx(100.0)  # std


def test_a_classifier_with_derived_features_serves_through_onnx(
    sqlite_services, make_config
) -> None:
    """Derived features (ratio, datetime difference, datetime parts, log) convert, so the
    trained pipeline gets ONNX Runtime; its probabilities are the pipeline's."""
    frame = sessions(500, seed=4)
    derived = [
        {"name": "rate", "ratio": ["clicks", "impressions"]},
        {"name": "since", "difference": ["timestamp", "last_click_at"], "unit": "h"},
        {"name": "visit", "datetime": "timestamp", "parts": list(PARTS)},
        {"name": "scale", "log": "impressions"},
    ]
    config = make_config(features={"derived": derived}, gate={})
    result = run_pipeline(dataset_from_frame(frame, "s"), config, sqlite_services)
    version = sqlite_services.registry.resolve(ModelRef.parse("clicks"))
    assert version.has_artifact("onnx")
    assert version.metrics["onnx_float64"] == 0
    runtime = open_runtime(sqlite_services, version)
    assert runtime.platform == "onnxruntime_onnx"
    validation = result.validation_frame
    served = runtime.predict(to_inputs(validation, version.signature))
    local = result.model.predict_proba(validation.drop(columns="clicked"))
    np.testing.assert_allclose(served["probabilities"], local, atol=1e-5)


PARTS = ("year", "month", "day", "weekday", "hour", "minute", "dayofyear")
