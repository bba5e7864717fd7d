from __future__ import annotations

import numpy as np
import pytest

from serving_models import IRIS_FEATURES, InProcessClient

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
