"""Triton's own HTTP client, with its defaults (binary inputs and outputs), against a
real server on a loopback port."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from servewell.http import create_app
from servewell.settings import AuthSettings, ServerSettings, Settings
from serving_models import serve_in_thread

tritonclient_http = pytest.importorskip("tritonclient.http")

SETOSA = [5.1, 3.5, 1.4, 0.2]


@pytest.fixture(scope="module")
def triton(model_home: Path) -> Iterator[object]:
    settings = Settings(
        home=model_home,
        auth=AuthSettings(enabled=False),
        server=ServerSettings(models=["iris", "echo"]),
    )
    with serve_in_thread(create_app(settings)) as server:
        client = tritonclient_http.InferenceServerClient(server.url.removeprefix("http://"))
        yield client
        client.close()


def test_health_and_metadata(triton: object) -> None:
    assert triton.is_server_live()  # type: ignore[attr-defined]
    assert triton.is_server_ready()  # type: ignore[attr-defined]
    assert triton.is_model_ready("iris")  # type: ignore[attr-defined]
    metadata = triton.get_model_metadata("iris")  # type: ignore[attr-defined]
    assert metadata["inputs"][0] == {"name": "input", "datatype": "FP32", "shape": [-1, 4]}
    assert "binary_tensor_data" in triton.get_server_metadata()["extensions"]  # type: ignore[attr-defined]


def test_infer_with_the_defaults(triton: object) -> None:
    tensor = tritonclient_http.InferInput("input", [2, 4], "FP32")
    tensor.set_data_from_numpy(np.array([SETOSA, [6.9, 3.1, 5.4, 2.1]], dtype=np.float32))
    result = triton.infer("iris", [tensor], request_id="r1")  # type: ignore[attr-defined]
    assert result.as_numpy("label").tolist() == [0, 2]
    assert result.as_numpy("probabilities").shape == (2, 3)
    assert result.get_response()["id"] == "r1"


def test_bytes_and_json_outputs(triton: object) -> None:
    text = np.array([[b"ab", "é".encode()]], dtype=np.object_)
    tensor = tritonclient_http.InferInput("in_BYTES", [1, 2], "BYTES")
    tensor.set_data_from_numpy(text)
    others = []
    for name, datatype, dtype in (("in_FP16", "FP16", np.float16), ("in_BOOL", "BOOL", np.bool_)):
        other = tritonclient_http.InferInput(name, [1, 2], datatype)
        other.set_data_from_numpy(np.array([[1, 0]], dtype=dtype), binary_data=False)
        others.append(other)
    inputs = [tensor, *others]
    names = ["in_BYTES", "in_FP16", "in_BOOL"]
    # every other input of the echo model, as zeros
    for spec in triton.get_model_metadata("echo")["inputs"]:  # type: ignore[attr-defined]
        if spec["name"] in names:
            continue
        zeros = tritonclient_http.InferInput(spec["name"], [1, 2], spec["datatype"])
        dtype = tritonclient_http.triton_to_np_dtype(spec["datatype"])
        zeros.set_data_from_numpy(np.zeros((1, 2), dtype=dtype))
        inputs.append(zeros)
    outputs = [
        tritonclient_http.InferRequestedOutput("out_BYTES"),
        tritonclient_http.InferRequestedOutput("out_FP16", binary_data=False),
    ]
    result = triton.infer("echo", inputs, outputs=outputs)  # type: ignore[attr-defined]
    assert result.as_numpy("out_BYTES").tolist() == text.tolist()
    assert result.as_numpy("out_FP16").tolist() == [[1.0, 0.0]]


def test_a_bad_request_raises_the_servers_message(triton: object) -> None:
    tensor = tritonclient_http.InferInput("input", [1, 3], "FP32")
    tensor.set_data_from_numpy(np.array([[1.0, 2.0, 3.0]], dtype=np.float32))
    with pytest.raises(Exception, match="expects 4 values per row"):
        triton.infer("iris", [tensor])  # type: ignore[attr-defined]
