"""Integer, float and category columns together: the trained pipeline converts (its
derived-feature step casts every number to one precision first) and serves the pipeline's
own probabilities; a conversion skl2onnx makes but ONNX Runtime refuses is dropped, not
fatal, and the original serves."""

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder

from servewell.core.ref import ModelRef
from servewell.core.signature import Signature
from servewell.registration.register import RegisterOptions, register_estimator
from servewell.serving.loading import open_runtime
from servewell.training.data import dataset_from_frame
from servewell.training.run import run_pipeline
from servewell.training.signature import to_inputs


def _churn(rows: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            "visits": rng.integers(0, 20, rows),
            "spend": rng.uniform(0, 100, rows),
            "plan": rng.choice(["free", "pro"], rows),
        }
    )
    frame["churned"] = ((frame["visits"] < 5) & (frame["plan"] == "free")).astype(int)
    return frame


def test_integer_float_and_text_columns_serve_through_onnx(sqlite_services, make_config) -> None:
    frame = _churn()
    config = make_config(name="churn", target="churned", estimator={"kind": "logistic"}, gate={})
    result = run_pipeline(dataset_from_frame(frame, "churn"), config, sqlite_services)
    version = sqlite_services.registry.resolve(ModelRef.parse("churn"))
    assert version.has_artifact("onnx")
    runtime = open_runtime(sqlite_services, version)
    assert runtime.platform == "onnxruntime_onnx"
    served = runtime.predict(to_inputs(frame.head(50), version.signature))
    rows = frame.head(50).drop(columns="churned")
    np.testing.assert_array_equal(served["label"], result.model.predict(rows))
    np.testing.assert_allclose(served["probabilities"], result.model.predict_proba(rows), atol=1e-6)


def test_a_pipeline_skl2onnx_cannot_convert_serves_through_scikit_learn(sqlite_services) -> None:
    frame = _churn()
    # A FunctionTransformer: skl2onnx has no converter for arbitrary Python code.
    columns = ColumnTransformer(
        [
            ("numbers", FunctionTransformer(np.log1p), ["visits"]),
            ("plan", OneHotEncoder(handle_unknown="ignore", sparse_output=False), ["plan"]),
        ]
    )
    model = Pipeline([("prepare", columns), ("model", LogisticRegression(max_iter=500))])
    model.fit(frame[["visits", "plan"]], frame["churned"])
    signature = Signature.from_dict(
        {
            "inputs": [
                {"name": "visits", "datatype": "INT64", "shape": [-1]},
                {"name": "plan", "datatype": "BYTES", "shape": [-1]},
            ],
            "outputs": [
                {"name": "label", "datatype": "INT64", "shape": [-1]},
                {"name": "probabilities", "datatype": "FP32", "shape": [-1, 2]},
            ],
            "class_labels": [0, 1],
        }
    )
    sample = to_inputs(frame, signature)
    options = RegisterOptions(signature=signature, sample=sample)
    version = register_estimator(sqlite_services, "mixed", model, options=options)
    assert not version.has_artifact("onnx")  # the conversion was refused, not served
    runtime = open_runtime(sqlite_services, version)
    served = runtime.predict(to_inputs(frame.head(50), version.signature))["label"]
    np.testing.assert_array_equal(served, model.predict(frame.head(50)[["visits", "plan"]]))
