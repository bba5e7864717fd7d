"""validation.max_json_depth: a body nested deeper is a 400 that names the limit, on both
protocols, and the server keeps serving."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from servewell.http import create_app
from servewell.settings import (
    AuthSettings,
    CacheSettings,
    ServerSettings,
    Settings,
    ValidationSettings,
)
from serving_models import InProcessClient, serve_in_process


@pytest.fixture(scope="module")
def shallow(model_home: Path) -> Iterator[InProcessClient]:
    settings = Settings(
        home=model_home,
        auth=AuthSettings(enabled=False),
        cache=CacheSettings(enabled=False),
        validation=ValidationSettings(max_json_depth=4),
        server=ServerSettings(models=["adder"]),
    )
    with serve_in_process(create_app(settings)) as client:
        yield client


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"1" + b"]" * depth


def test_rest_bodies_deeper_than_the_limit_are_refused(shallow: InProcessClient) -> None:
    url = "/v1/models/adder:predict"
    fine = shallow.post(url, content=b'{"inputs": {"x": [[1.0]], "y": [[2.0]]}}')  # depth 4
    assert fine.status_code == 200, fine.text
    deep = shallow.post(url, content=b'{"inputs": {"x": ' + _nested(3) + b', "y": [[2.0]]}}')
    assert deep.status_code == 400
    assert "nests deeper than 4 levels (validation.max_json_depth)" in deep.json()["error"]
    assert shallow.post(url, content=b'{"inputs": {"x": [[1.0]], "y": [[2.0]]}}').is_success


def test_v2_bodies_deeper_than_the_limit_are_refused(shallow: InProcessClient) -> None:
    body = (
        b'{"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 1], "data": '
        + _nested(4)
        + b'}, {"name": "y", "datatype": "FP32", "shape": [1, 1], "data": [2.0]}]}'
    )
    deep = shallow.post("/v2/models/adder/infer", content=body)
    assert deep.status_code == 400
    assert "validation.max_json_depth" in deep.json()["error"]


def test_the_default_limit_refuses_what_the_parser_would_choke_on(
    client: InProcessClient,
) -> None:
    """64 levels by default; far deeper bodies (orjson stops at 1024) are 400s too."""
    for depth in (70, 5000):
        body = b'{"instances": ' + _nested(depth) + b"}"
        answer = client.post("/v1/models/iris:predict", content=body)
        assert answer.status_code == 400, depth
    assert client.get("/v2/health/ready").status_code == 200
