from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from servewell.bootstrap import build_services
from servewell.http import create_app
from servewell.settings import AuthSettings, CacheSettings, ServerSettings, Settings
from serving_models import (
    ECHO_VALUES,
    IRIS_FEATURES,
    InProcessClient,
    register_echo,
    register_onnx_classifier,
    serve_in_process,
)

SETOSA = [5.1, 3.5, 1.4, 0.2]
VIRGINICA = [6.9, 3.1, 5.4, 2.1]


def test_rows_as_lists_answer_labels_probabilities_and_version(client: InProcessClient) -> None:
    response = client.post("/v1/models/iris:predict", json={"instances": [SETOSA, VIRGINICA]})
    assert response.status_code == 200
    body = response.json()
    assert body["model"] == "iris"
    assert body["version"] == 1
    assert body["predictions"] == [0, 2]
    assert body["classes"] == [0, 1, 2]
    probabilities = np.array(body["probabilities"])
    assert probabilities.shape == (2, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_rows_as_objects_are_reordered_by_feature_name(client: InProcessClient) -> None:
    row = dict(zip(IRIS_FEATURES, VIRGINICA, strict=True))
    shuffled = dict(reversed(list(row.items())))
    by_name = client.post("/v1/models/iris:predict", json={"instances": [shuffled]}).json()
    by_position = client.post("/v1/models/iris:predict", json={"instances": [VIRGINICA]}).json()
    assert by_name["predictions"] == [2]
    assert by_name["probabilities"] == by_position["probabilities"]


def test_columns_keyed_by_feature_name(client: InProcessClient) -> None:
    columns = {name: [a, b] for name, a, b in zip(IRIS_FEATURES, SETOSA, VIRGINICA, strict=True)}
    body = client.post("/v1/models/iris:predict", json={"inputs": columns}).json()
    assert body["predictions"] == [0, 2]


def test_a_pinned_version_answers(client: InProcessClient) -> None:
    response = client.post("/v1/models/iris/versions/2:predict", json={"instances": [SETOSA]})
    assert response.status_code == 200
    assert response.json()["version"] == 2


@pytest.mark.parametrize(
    "body",
    [
        {"instances": [{"x": 1.0, "y": 2.0}, {"x": -1, "y": 0.5}]},
        {"instances": [[1.0, 2.0], [-1, 0.5]]},
        {"inputs": {"x": [1.0, -1], "y": [2.0, 0.5]}},
    ],
    ids=["objects", "lists", "columns"],
)
def test_a_columnar_model(client: InProcessClient, body: dict[str, object]) -> None:
    response = client.post("/v1/models/adder:predict", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["predictions"] == [3.0, -0.5]


def test_model_status_and_listing(client: InProcessClient) -> None:
    status = client.get("/v1/models/iris").json()
    assert [entry["version"] for entry in status["model_version_status"]] == ["1", "2"]
    assert status["model_version_status"][0]["state"] == "AVAILABLE"
    assert client.get("/v1/models/iris/versions/2").status_code == 200
    listing = client.get("/v1/models").json()["models"]
    assert {model["name"]: model["version"] for model in listing} == {
        "adder": 1, "echo": 1, "iris": 1,
    }  # fmt: skip
    assert listing[2]["versions"] == [1, 2]


@pytest.fixture(scope="module")
def plain_onnx_client(
    tmp_path_factory: pytest.TempPathFactory, iris: tuple[np.ndarray, np.ndarray]
) -> Iterator[InProcessClient]:
    """``flower`` (an skl2onnx classifier without ZipMap) and ``echo_column`` (every
    datatype, shape [-1]: each REST row holds one scalar per output)."""
    folder = tmp_path_factory.mktemp("plain-onnx")
    services = build_services(Settings(home=folder / "home"))
    try:
        register_onnx_classifier(services, folder, *iris)
        register_echo(services, folder, "echo_column", shape=(None,))
    finally:
        services.close()
    settings = Settings(
        home=folder / "home",
        auth=AuthSettings(enabled=False),
        cache=CacheSettings(enabled=False),
        server=ServerSettings(models=["flower", "echo_column"]),
    )
    with serve_in_process(create_app(settings)) as in_process:
        yield in_process


def test_an_onnx_classifier_without_class_labels_answers_rows(
    plain_onnx_client: InProcessClient,
) -> None:
    response = plain_onnx_client.post(
        "/v1/models/flower:predict", json={"instances": [SETOSA, VIRGINICA]}
    )
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    assert [row["label"] for row in predictions] == [0, 2]
    np.testing.assert_allclose([sum(row["probabilities"]) for row in predictions], 1.0, rtol=1e-5)


def test_every_datatype_comes_back_as_json_rows(client: InProcessClient) -> None:
    row = {f"in_{datatype}": values for datatype, values in ECHO_VALUES.items()}
    response = client.post("/v1/models/echo:predict", json={"instances": [row]})
    assert response.status_code == 200, response.text
    (answer,) = response.json()["predictions"]
    assert answer == {f"out_{datatype}": values for datatype, values in ECHO_VALUES.items()}


def test_every_datatype_comes_back_as_json_scalars(plain_onnx_client: InProcessClient) -> None:
    rows = [
        {f"in_{datatype}": values[i] for datatype, values in ECHO_VALUES.items()} for i in (0, 1)
    ]
    response = plain_onnx_client.post("/v1/models/echo_column:predict", json={"instances": rows})
    assert response.status_code == 200, response.text
    expected = [
        {f"out_{datatype}": values[i] for datatype, values in ECHO_VALUES.items()} for i in (0, 1)
    ]
    assert response.json()["predictions"] == expected
