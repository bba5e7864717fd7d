"""Python models served by a real ``servewell serve`` process: V2 and REST, validation
and the signature's max_batch_size, the response cache, metrics; a model that fails or
answers off its signature is a 500 naming it and the request id, with the traceback in
the log only; one that hangs or crashes on purpose registers, loads and serves."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from servewell.bootstrap import build_services
from servewell.settings import Settings
from serving_models import PYTHON_MODELS, register_python, serve_process


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("python-serving")
    signature = json.loads((PYTHON_MODELS / "sum.json").read_text()) | {"max_batch_size": 4}
    (folder / "sum-4.json").write_text(json.dumps(signature))
    home = folder / "home"
    services = build_services(Settings(home=home))
    try:
        register_python(services, "sum", "sum", signature=folder / "sum-4.json")
        register_python(services, "slow", "slow", artifacts=PYTHON_MODELS / "slow_artifacts")
        for model in ("flaky", "wrong_output", "hang", "crash"):
            register_python(services, model.replace("_", "-"), model)
    finally:
        services.close()
    return home


@pytest.fixture(scope="module")
def url(home: Path) -> Iterator[str]:
    models = "sum,slow,hang,crash"
    with serve_process(home, "--no-auth", "--models", models, env=_unpack_in(home)) as (served, _):
        yield served


def _unpack_in(home: Path) -> dict[str, str]:
    """Where a server unpacks its Python models: the test's own folder, since a server
    killed at the end of its test cannot remove what it unpacked."""
    folder = home.parent / "unpacked"
    folder.mkdir(exist_ok=True)
    return {"TMPDIR": str(folder)}


def _rest(url: str, model: str, rows: list[dict[str, float]]) -> httpx.Response:
    return httpx.post(f"{url}/v1/models/{model}:predict", json={"instances": rows}, timeout=30)


def test_v2_and_rest_answer_from_the_model_class(url: str) -> None:
    v2 = httpx.post(
        f"{url}/v2/models/sum/infer",
        json={
            "inputs": [
                {"name": "x", "datatype": "FP32", "shape": [2], "data": [1, 2]},
                {"name": "y", "datatype": "FP32", "shape": [2], "data": [10, 20]},
            ],
            "outputs": [{"name": "sum"}],
        },
        timeout=30,
    )
    assert v2.status_code == 200, v2.text
    assert v2.json()["outputs"] == [
        {"name": "sum", "datatype": "FP32", "shape": [2], "data": [11.0, 22.0]}
    ]
    rest = _rest(url, "sum", [{"x": 1.5, "y": 2}])
    assert rest.status_code == 200, rest.text
    (prediction,) = rest.json()["predictions"]
    assert prediction["sum"] == 3.5
    metadata = httpx.get(f"{url}/v2/models/sum", timeout=30).json()
    assert metadata["platform"] == "python"
    assert [o["name"] for o in metadata["outputs"]] == ["sum", "rows_in_call", "calls"]


def test_the_signatures_max_batch_size_bounds_a_request(url: str) -> None:
    answer = _rest(url, "sum", [{"x": 1, "y": 1}] * 5)
    assert answer.status_code == 400
    assert answer.json()["error"] == "input 'x' has 5 rows; at most 4 per request"
    assert _rest(url, "sum", [{"x": 1, "y": 1}] * 4).status_code == 200


def test_a_repeated_request_is_answered_from_the_cache(url: str) -> None:
    body = [{"x": 7, "y": 7}]
    first, second = (_rest(url, "sum", body).json()["predictions"][0] for _ in range(2))
    assert first == second  # the same `calls`: the model did not run again
    other = _rest(url, "sum", [{"x": 7, "y": 8}]).json()["predictions"][0]
    assert other["calls"] > first["calls"]
    metrics = httpx.get(f"{url}/metrics", timeout=30).text
    assert 'servewell_cache_requests_total{model="sum",outcome="hit"}' in metrics
    assert 'servewell_requests_total{model="sum",protocol="rest",status="200",version="1"}' in (
        metrics
    )


def test_slow_hang_and_crash_models_serve_ordinary_rows(url: str) -> None:
    """hang and crash misbehave only on a negative x, which this test never sends."""
    for model in ("slow", "hang", "crash"):
        answer = _rest(url, model, [{"x": 4}])
        assert answer.status_code == 200, answer.text
        assert answer.json()["predictions"] == [4.0]
    assert httpx.get(f"{url}/v2/health/ready", timeout=30).status_code == 200


def test_a_failing_model_is_a_500_naming_it_and_the_traceback_is_in_the_log(
    home: Path,
) -> None:
    log: list[str] = []
    models = "wrong-output,flaky"
    serving = serve_process(home, "--no-auth", "--models", models, env=_unpack_in(home), log=log)
    with serving as (url, _):
        wrong = httpx.post(
            f"{url}/v2/models/wrong-output/infer",
            json={"inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": [-2]}]},
            headers={"X-Request-ID": "off-signature-1"},
            timeout=30,
        )
        statuses = [_rest(url, "flaky", [{"x": float(i)}]).status_code for i in range(6)]
        three_more = [_rest(url, "flaky", [{"x": 99.0 + i}]) for i in range(3)]
    (failed,) = [answer for answer in three_more if answer.status_code == 500]
    assert wrong.status_code == 500
    assert wrong.json() == {
        "error": "model 'wrong-output' version 1 failed; request id off-signature-1"
    }
    assert sorted(statuses) == [200] * 4 + [500] * 2  # every 3rd call fails
    assert failed.json()["code"] == "model_failed"
    assert "model 'flaky' version 1 failed; request id" in failed.json()["error"]
    assert "Traceback" not in wrong.text + failed.text
    assert "WrongOutputModel.predict returned 'y' of shape [1, 2]" in log[0]
    assert "RuntimeError: call 3 fails on purpose" in log[0]
    assert "Traceback" in log[0]
