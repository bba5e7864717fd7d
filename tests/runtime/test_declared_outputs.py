"""A runtime returns its outputs in the datatypes the signature declares, so V2 model
metadata (the signature) says what inference returns: an ONNX classifier converted in
double precision computes FP64 probabilities behind a signature that declares FP32."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from servewell.bootstrap import build_services
from servewell.core.signature import Signature
from servewell.http import create_app
from servewell.registration.register import RegisterOptions, register_file
from servewell.runtime.onnx import OnnxRuntime
from servewell.settings import AuthSettings, CacheSettings, ServerSettings, Settings
from serving_models import serve_in_process

SIGNATURE = Signature.from_dict(
    {
        "inputs": [{"name": "input", "datatype": "FP64", "shape": [-1, 4]}],
        "outputs": [
            {"name": "label", "datatype": "INT64", "shape": [-1]},
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, 3]},
        ],
        "class_labels": [0, 1, 2],
    }
)


@pytest.fixture
def double_model(tmp_path: Path, iris: tuple[np.ndarray, np.ndarray]) -> Path:
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import DoubleTensorType
    from sklearn.linear_model import LogisticRegression

    features, target = iris
    model = LogisticRegression(max_iter=500).fit(features, target)
    inputs = [("input", DoubleTensorType([None, 4]))]
    onnx_model = to_onnx(model, initial_types=inputs, options={"zipmap": False})
    path = tmp_path / "double.onnx"
    path.write_bytes(onnx_model.SerializeToString())
    return path


def test_onnx_outputs_come_in_the_declared_datatypes(double_model: Path, iris) -> None:
    runtime = OnnxRuntime(double_model, signature=SIGNATURE)
    runtime.load()
    outputs = runtime.predict({"input": iris[0][:5].astype(np.float64)})
    assert outputs["probabilities"].dtype == np.float32
    assert outputs["label"].dtype == np.int64
    undeclared = OnnxRuntime(double_model)  # the graph's own signature: FP64 it is
    undeclared.load()
    rows = iris[0][:5].astype(np.float64)
    assert undeclared.predict({"input": rows})["probabilities"].dtype == np.float64


def test_v2_metadata_says_what_inference_returns(double_model: Path, iris, tmp_path: Path) -> None:
    settings = Settings(
        home=tmp_path / "home",
        auth=AuthSettings(enabled=False),
        cache=CacheSettings(enabled=False),
        server=ServerSettings(models=["double"]),
    )
    services = build_services(settings)
    try:
        register_file(services, double_model, "double", options=RegisterOptions(SIGNATURE))
    finally:
        services.close()
    with serve_in_process(create_app(settings)) as client:
        metadata = client.get("/v2/models/double").json()
        row = iris[0][0].tolist()
        body = {"inputs": [{"name": "input", "datatype": "FP64", "shape": [1, 4], "data": row}]}
        answer = client.post("/v2/models/double/infer", json=body).json()
    declared = {output["name"]: output["datatype"] for output in metadata["outputs"]}
    returned = {output["name"]: output["datatype"] for output in answer["outputs"]}
    assert returned == declared == {"label": "INT64", "probabilities": "FP32"}
