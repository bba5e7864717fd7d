"""Every way a request can be wrong gets a 4xx that says what was wrong, never a 500."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bad_requests import CASES, IRIS_REST, IRIS_V2, ROW, Case
from servewell.http import create_app
from servewell.settings import AuthSettings, ServerSettings, Settings, ValidationSettings
from serving_models import InProcessClient, serve_in_process


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_a_bad_request_gets_a_4xx_that_says_why(client: InProcessClient, case: Case) -> None:
    response = client.post(case.path, json=case.json, content=case.content, headers=case.headers)
    assert response.status_code == case.status, response.text
    error = response.json()["error"]
    assert case.says in error
    if case.path.startswith("/v2"):
        assert set(response.json()) == {"error"}
    else:
        assert response.json()["code"]
    assert "Traceback" not in response.text
    # ... and the server goes on serving.
    assert client.post(IRIS_REST, json={"instances": [ROW]}).status_code == 200


def test_the_v2_binary_nan_names_the_input(client: InProcessClient) -> None:
    case = CASES["v2 binary NaN"]
    response = client.post(case.path, content=case.content, headers=case.headers)
    assert response.json()["error"] == (
        "input 'input' has nan at [0, 1]; NaN and infinite values are not allowed"
    )


@pytest.fixture(scope="module")
def strict_client(model_home: Path) -> Iterator[InProcessClient]:
    settings = Settings(
        home=model_home,
        auth=AuthSettings(enabled=False),
        validation=ValidationSettings(max_rows=3),
        server=ServerSettings(models=["iris"], max_body_bytes=1000),
    )
    with serve_in_process(create_app(settings)) as client:
        yield client


def test_too_many_rows(strict_client: InProcessClient) -> None:
    response = strict_client.post(IRIS_REST, json={"instances": [ROW] * 4})
    assert response.status_code == 400
    assert response.json()["error"] == "input 'input' has 4 rows; at most 3 per request"


def test_a_body_over_the_limit_is_413(strict_client: InProcessClient) -> None:
    response = strict_client.post(IRIS_REST, json={"instances": [ROW] * 100})
    assert response.status_code == 413
    assert response.json()["error"] == "request body is larger than the limit of 1000 bytes"


def test_a_chunked_body_over_the_limit_is_413(strict_client: InProcessClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"instances": ['
        for _ in range(100):
            yield b"[1.0, 2.0, 3.0, 4.0],"
        yield b"[1.0, 2.0, 3.0, 4.0]]}"

    response = strict_client.post(IRIS_V2, content=chunks())
    assert response.status_code == 413


@pytest.mark.parametrize(
    "path",
    [
        "/v1/models/iris/versions/99999999999999999999999",
        "/v2/models/iris/versions/99999999999999999999999",
        "/v2/models/iris/versions/%C2%B2",
        "/v2/models/iris/versions/%C2%B2/ready",
        "/v1/models/iris/versions/%C2%B2",
    ],
)
def test_a_version_that_cannot_exist_is_404_on_metadata_routes(
    client: InProcessClient, path: str
) -> None:
    response = client.get(path)
    assert response.status_code == 404, response.text
    assert "no version" in response.json()["error"]
