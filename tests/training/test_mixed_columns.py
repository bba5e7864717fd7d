"""Integer, float and category columns together: skl2onnx makes a graph ONNX Runtime
refuses, and registration falls back to serving through scikit-learn instead of failing."""

import numpy as np
import pandas as pd

from servewell.core.ref import ModelRef
from servewell.serving.loading import open_runtime
from servewell.training.data import dataset_from_frame
from servewell.training.run import run_pipeline
from servewell.training.signature import to_inputs


def test_a_conversion_that_does_not_run_is_dropped_not_fatal(sqlite_services, make_config) -> None:
    rng = np.random.default_rng(3)
    rows = 300
    frame = pd.DataFrame(
        {
            "visits": rng.integers(0, 20, rows),
            "spend": rng.uniform(0, 100, rows),
            "plan": rng.choice(["free", "pro"], rows),
        }
    )
    frame["churned"] = ((frame["visits"] < 5) & (frame["plan"] == "free")).astype(int)
    config = make_config(name="churn", target="churned", estimator={"kind": "logistic"}, gate={})
    result = run_pipeline(dataset_from_frame(frame, "churn"), config, sqlite_services)
    version = sqlite_services.registry.resolve(ModelRef.parse("churn"))
    assert version.version == 1
    assert not version.has_artifact("onnx")  # the conversion was refused, not served
    runtime = open_runtime(sqlite_services, version)
    served = runtime.predict(to_inputs(frame.head(50), version.signature))["label"]
    np.testing.assert_array_equal(
        served, result.model.predict(frame.head(50).drop(columns="churned"))
    )
