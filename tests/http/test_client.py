"""servewell's Python client against a real server on a loopback port."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anyio
import numpy as np
import pytest

from servewell.client import AsyncClient, Client
from servewell.errors import InvalidInput, NotFound
from servewell.http import create_app
from servewell.settings import AuthSettings, ServerSettings, Settings
from serving_models import IRIS_FEATURES, serve_in_thread

SETOSA = [5.1, 3.5, 1.4, 0.2]


@pytest.fixture(scope="module")
def url(model_home: Path) -> Iterator[str]:
    settings = Settings(
        home=model_home,
        auth=AuthSettings(enabled=False),
        server=ServerSettings(models=["iris", "iris@2"]),
    )
    with serve_in_thread(create_app(settings)) as server:
        yield server.url


def test_predict_rows_and_objects(url: str) -> None:
    with Client(url) as client:
        answer = client.predict("iris", [SETOSA])
        assert (answer.model, answer.version, answer.predictions) == ("iris", 1, [0])
        assert answer.classes == [0, 1, 2]
        by_name = client.predict("iris", [dict(zip(IRIS_FEATURES, SETOSA, strict=True))], 2)
        assert by_name.version == 2
        assert by_name.predictions == [0]


def test_infer_arrays_in_and_out(url: str) -> None:
    with Client(url) as client:
        outputs = client.infer("iris", {"input": np.array([SETOSA], dtype=np.float32)})
    assert outputs["label"].tolist() == [0]
    assert outputs["probabilities"].dtype == np.float32


def test_health_and_models(url: str) -> None:
    with Client(url) as client:
        health = client.health()
        assert health.ready
        assert health.summary == "ready: serving iris@1, iris@2"
        assert [model["name"] for model in client.models()] == ["iris"]


def test_errors_are_servewells_typed_errors(url: str) -> None:
    with Client(url) as client:
        with pytest.raises(InvalidInput, match="expects 4 values per row") as caught:
            client.predict("iris", [[1.0, 2.0]])
        assert caught.value.detail == {"input": "input"}
        with pytest.raises(NotFound, match="model 'nope' is not served"):
            client.predict("nope", [SETOSA])
        with pytest.raises(InvalidInput, match="expects 4 values per row"):
            client.infer("iris", {"input": np.ones((1, 2), dtype=np.float32)})


def test_the_async_client(url: str) -> None:
    async def calls() -> tuple[int, list[int], bool]:
        async with AsyncClient(url) as client:
            answer = await client.predict("iris", [SETOSA], version=2)
            outputs = await client.infer("iris", {"input": np.array([SETOSA], np.float32)})
            return answer.version, outputs["label"].tolist(), (await client.health()).ready

    assert anyio.run(calls) == (2, [0], True)
