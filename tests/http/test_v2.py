from __future__ import annotations

import struct
from typing import Any

import numpy as np
import orjson
import pytest

from servewell.core.datatypes import V2_TO_NUMPY
from serving_models import ECHO_VALUES, InProcessClient

SETOSA = [5.1, 3.5, 1.4, 0.2]


def test_server_metadata_lists_the_binary_extension(client: InProcessClient) -> None:
    body = client.get("/v2").json()
    assert body["name"] == "servewell"
    assert "binary_tensor_data" in body["extensions"]


def test_model_metadata(client: InProcessClient) -> None:
    body = client.get("/v2/models/iris").json()
    assert body["name"] == "iris"
    assert body["versions"] == ["1", "2"]
    assert body["platform"] == "onnxruntime_onnx"
    assert body["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 4]}]
    assert {output["name"] for output in body["outputs"]} == {"label", "probabilities"}
    assert client.get("/v2/models/iris/versions/2").json()["name"] == "iris"


def test_model_readiness(client: InProcessClient) -> None:
    assert client.get("/v2/models/iris/ready").json()["ready"] is True
    assert client.get("/v2/models/iris/versions/2/ready").json()["version"] == "2"
    assert client.get("/v2/models/iris/versions/7/ready").status_code == 404
    assert client.get("/v2/models/nope/ready").status_code == 404


def test_json_inference_echoes_the_id(client: InProcessClient) -> None:
    request = {
        "id": "req-7",
        "inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4], "data": SETOSA}],
    }
    response = client.post("/v2/models/iris/infer", json=request)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_name"] == "iris"
    assert body["model_version"] == "1"
    assert body["id"] == "req-7"
    outputs = {output["name"]: output for output in body["outputs"]}
    assert outputs["label"] == {"name": "label", "datatype": "INT64", "shape": [1], "data": [0]}
    assert outputs["probabilities"]["shape"] == [1, 3]


def test_nested_data_and_output_selection(client: InProcessClient) -> None:
    request = {
        "inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4], "data": [SETOSA]}],
        "outputs": [{"name": "probabilities"}],
    }
    body = client.post("/v2/models/iris/versions/2/infer", json=request).json()
    assert body["model_version"] == "2"
    assert [output["name"] for output in body["outputs"]] == ["probabilities"]


def _echo_inputs() -> list[dict[str, Any]]:
    return [
        {"name": f"in_{datatype}", "datatype": datatype, "shape": [1, 2], "data": values}
        for datatype, values in ECHO_VALUES.items()
    ]


def test_every_datatype_round_trips_as_json(client: InProcessClient) -> None:
    response = client.post("/v2/models/echo/infer", json={"inputs": _echo_inputs()})
    assert response.status_code == 200, response.text
    outputs = {output["name"]: output for output in response.json()["outputs"]}
    for datatype, values in ECHO_VALUES.items():
        output = outputs[f"out_{datatype}"]
        assert output["datatype"] == datatype
        assert output["shape"] == [1, 2]
        assert output["data"] == values, datatype


def _binary_tensor(datatype: str, values: list[Any]) -> bytes:
    if datatype == "BYTES":
        encoded = [value.encode() for value in values]
        return b"".join(struct.pack("<I", len(item)) + item for item in encoded)
    return np.array(values, dtype=V2_TO_NUMPY[datatype]).tobytes()


def _binary_request(
    inputs: dict[str, tuple[str, list[int], bytes]], parameters: dict[str, Any]
) -> tuple[bytes, dict[str, str]]:
    header = orjson.dumps(
        {
            "inputs": [
                {
                    "name": name,
                    "datatype": datatype,
                    "shape": shape,
                    "parameters": {"binary_data_size": len(raw)},
                }
                for name, (datatype, shape, raw) in inputs.items()
            ],
            "parameters": parameters,
        }
    )
    body = header + b"".join(raw for _, _, raw in inputs.values())
    headers = {
        "Inference-Header-Content-Length": str(len(header)),
        "Content-Type": "application/octet-stream",
    }
    return body, headers


def _split_response(content: bytes, header_length: int) -> dict[str, tuple[str, bytes]]:
    header = orjson.loads(content[:header_length])
    offset, tensors = header_length, {}
    for output in header["outputs"]:
        size = output["parameters"]["binary_data_size"]
        tensors[output["name"]] = (output["datatype"], content[offset : offset + size])
        offset += size
    assert offset == len(content)
    return tensors


def test_every_datatype_round_trips_as_binary(client: InProcessClient) -> None:
    inputs = {
        f"in_{datatype}": (datatype, [1, 2], _binary_tensor(datatype, values))
        for datatype, values in ECHO_VALUES.items()
    }
    body, headers = _binary_request(inputs, {"binary_data_output": True})
    response = client.post("/v2/models/echo/infer", content=body, headers=headers)
    assert response.status_code == 200, response.text
    length = int(response.headers["inference-header-content-length"])
    outputs = _split_response(response.content, length)
    for datatype, values in ECHO_VALUES.items():
        assert outputs[f"out_{datatype}"] == (datatype, _binary_tensor(datatype, values))


def test_binary_input_json_output_unless_asked(client: InProcessClient) -> None:
    raw = np.array([SETOSA], dtype=np.float32).tobytes()
    body, headers = _binary_request({"input": ("FP32", [1, 4], raw)}, {})
    response = client.post("/v2/models/iris/infer", content=body, headers=headers)
    assert response.status_code == 200, response.text
    assert "inference-header-content-length" not in response.headers
    labels = {o["name"]: o for o in response.json()["outputs"]}["label"]
    assert labels["data"] == [0]


@pytest.mark.parametrize("binary", [True, False])
def test_binary_per_output(client: InProcessClient, binary: bool) -> None:
    request = {
        "inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4], "data": SETOSA}],
        "outputs": [{"name": "label", "parameters": {"binary_data": binary}}],
    }
    response = client.post("/v2/models/iris/infer", json=request)
    assert response.status_code == 200
    if binary:
        length = int(response.headers["inference-header-content-length"])
        _datatype, raw = _split_response(response.content, length)["label"]
        assert np.frombuffer(raw, dtype="<i8").tolist() == [0]
    else:
        assert response.json()["outputs"][0]["data"] == [0]
