"""A regression target end to end: metrics equal scikit-learn's, and the registered model
serves the same numbers as the trained pipeline."""

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from servewell.core.ref import ModelRef
from servewell.serving.loading import open_runtime
from servewell.training.data import dataset_from_frame
from servewell.training.register import register_result
from servewell.training.run import train_pipeline
from servewell.training.signature import to_inputs


def _houses(rows: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    area = rng.uniform(30, 200, rows)
    rooms = rng.integers(1, 6, rows)
    price = 2.5 * area + 10 * rooms + rng.normal(0, 10, rows)
    return pd.DataFrame({"area": area, "rooms": rooms, "price": price})


def test_regression_metrics_and_serving(sqlite_services, make_config) -> None:
    config = make_config(
        name="houses",
        target="price",
        task="regression",
        estimator={"kind": "gradient_boosting", "params": {"n_estimators": 30}},
        gate={},
    )
    frame = _houses()
    result = train_pipeline(dataset_from_frame(frame, "houses"), config)
    figures = result.metrics.headline()
    truth = result.validation_truth
    predicted = result.validation_predictions.value
    assert figures["mae"] == pytest.approx(skm.mean_absolute_error(truth, predicted))
    assert figures["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(truth, predicted)))
    assert figures["r2"] == pytest.approx(skm.r2_score(truth, predicted))
    assert figures["r2"] > 0.9

    register_result(sqlite_services, result)
    version = sqlite_services.registry.resolve(ModelRef.parse("houses"))
    assert [spec.name for spec in version.signature.outputs] == ["variable"]
    runtime = open_runtime(sqlite_services, version)
    served = runtime.predict(to_inputs(frame.head(20), version.signature))["variable"].ravel()
    expected = result.model.predict(frame.head(20)[["area", "rooms"]])
    np.testing.assert_allclose(served, expected, rtol=1e-4)
