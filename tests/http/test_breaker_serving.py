"""The circuit breaker and retries in a real ``servewell serve`` process, on real
Python models: a model that fails while a file exists opens its breaker (503 with
Retry-After naming it, state 2 in /metrics and in ``GET /v1/models/{name}``, one log
line), and once the file is gone a probe closes it again; a model that fails every
other call answers every request with ``retries: 1``, each retry counted."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from servewell.bootstrap import build_services
from servewell.settings import Settings
from serving_models import register_python, serve_process

WAIT_S = 30.0
"""How long a test waits for the breaker to move: generous, the machine is shared."""


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("breaker-serving")
    recovering, alternating = folder / "recovering", folder / "alternating"
    recovering.mkdir()
    alternating.mkdir()
    (recovering / "config.json").write_text(json.dumps({"flag": str(folder / "failing")}))
    (alternating / "config.json").write_text(json.dumps({"fail_every": 2}))
    services = build_services(Settings(home=folder / "home"))
    try:
        register_python(services, "recovering", "fails_while", artifacts=recovering)
        register_python(services, "alternating", "flaky", artifacts=alternating)
    finally:
        services.close()
    (folder / "unpacked").mkdir()
    return folder


@contextmanager
def _serving(folder: Path, log: list[str]) -> Iterator[str]:
    env = {
        "TMPDIR": str(folder / "unpacked"),  # a killed server leaves its unpacked models
        "SERVEWELL_MODELS__RECOVERING__BREAKER__FAILURES_TO_OPEN": "3",
        "SERVEWELL_MODELS__RECOVERING__BREAKER__COOLDOWN_S": "1",
        "SERVEWELL_MODELS__RECOVERING__BREAKER__HALF_OPEN_PROBES": "2",
        "SERVEWELL_MODELS__ALTERNATING__RETRIES": "1",
    }
    models = "recovering,alternating"
    with serve_process(folder / "home", "--no-auth", "--models", models, env=env, log=log) as (
        url,
        _,
    ):
        yield url


def _predict(url: str, model: str, x: float) -> httpx.Response:
    return httpx.post(f"{url}/v1/models/{model}:predict", json={"instances": [x]}, timeout=30)


def _samples(url: str, name: str, model: str) -> dict[str, float]:
    """The samples of metric family ``name`` for ``model``, by their ``to`` label (or
    "" without one)."""
    text = httpx.get(f"{url}/metrics", timeout=30).text
    return {
        sample.labels.get("to", ""): sample.value
        for family in text_string_to_metric_families(text)
        if family.name == name
        for sample in family.samples
        if sample.labels.get("model") == model and not sample.name.endswith("_created")
    }


def _version_status(url: str, model: str) -> dict[str, str]:
    answer = httpx.get(f"{url}/v1/models/{model}", timeout=30)
    assert answer.status_code == 200, answer.text
    (status,) = answer.json()["model_version_status"]
    assert status["state"] == "AVAILABLE"
    return dict(status["status"])


def test_the_breaker_opens_refuses_and_closes_after_the_model_recovers(folder: Path) -> None:
    log: list[str] = []
    with _serving(folder, log) as url:
        _open_and_close(folder, url)
    moves = [line for line in _json_lines(log[0]) if line.get("to")]
    assert [(line["from"], line["to"]) for line in moves][:1] == [("closed", "open")]
    assert (moves[0]["model"], moves[0]["version"]) == ("recovering", 1)
    assert moves[0]["request_id"]  # the request that opened it
    assert moves[0]["why"] == "3 consecutive failures (last: model_failed)"
    assert moves[0]["level"] == "warning"
    assert [(line["from"], line["to"]) for line in moves][-2:] == [
        ("open", "half_open"),
        ("half_open", "closed"),
    ]


def _open_and_close(folder: Path, url: str) -> None:
    assert _predict(url, "recovering", 1.0).status_code == 200
    assert _samples(url, "servewell_breaker_state", "recovering") == {"": 0}
    (folder / "failing").touch()
    failures = [_predict(url, "recovering", 2.0 + n) for n in range(3)]
    assert [answer.status_code for answer in failures] == [500] * 3

    refused = _until_refused(url)
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.json()["code"] == "model_unavailable"
    assert refused.json()["error"].startswith(
        "model 'recovering' version 1 is unavailable (circuit breaker open)"
    )
    assert _samples(url, "servewell_breaker_state", "recovering") == {"": 2}
    assert _samples(url, "servewell_breaker_transitions", "recovering")["open"] >= 1
    status = _version_status(url, "recovering")
    assert status["error_code"] == "UNAVAILABLE"
    assert status["error_message"].startswith("circuit breaker open: ")
    assert status["error_message"].endswith(" s")  # "; next probe in 1 s"

    (folder / "failing").unlink()
    _until_closed(url)
    assert _version_status(url, "recovering") == {"error_code": "OK", "error_message": ""}
    moves = _samples(url, "servewell_breaker_transitions", "recovering")
    assert moves["half_open"] >= 1
    assert moves["closed"] == 1
    assert _predict(url, "recovering", 20.0).status_code == 200


def _until_closed(url: str) -> None:
    """Send requests until the breaker has closed (after cooldown_s, two probes)."""
    give_up = time.monotonic() + WAIT_S
    statuses: list[int] = []
    while time.monotonic() < give_up:
        statuses.append(_predict(url, "recovering", 10.0 + len(statuses)).status_code)
        if _samples(url, "servewell_breaker_state", "recovering") == {"": 0}:
            assert set(statuses) <= {200, 503}, statuses
            assert statuses[-2:] == [200, 200]
            return
        time.sleep(0.1)
    pytest.fail(f"the breaker did not close within {WAIT_S} s: {statuses}")


def _until_refused(url: str) -> httpx.Response:
    """The first 503 (a request that comes after the cooldown is a probe, which fails:
    500, and the breaker opens again)."""
    give_up = time.monotonic() + WAIT_S
    while time.monotonic() < give_up:
        answer = _predict(url, "recovering", 9.0)
        if answer.status_code != 500:
            assert answer.status_code == 503, answer.text
            return answer
    pytest.fail(f"the breaker did not open within {WAIT_S} s")


def _json_lines(output: str) -> list[dict[str, Any]]:
    lines = []
    for line in output.splitlines():
        with contextlib.suppress(ValueError):
            lines.append(json.loads(line))
    return [line for line in lines if isinstance(line, dict)]


def test_a_model_failing_every_other_call_answers_with_one_retry(folder: Path) -> None:
    with _serving(folder, []) as url:
        _five_requests_retried_once(url)


def _five_requests_retried_once(url: str) -> None:
    before = _samples(url, "servewell_retries", "alternating")
    answers = [_predict(url, "alternating", float(n)) for n in range(5)]
    assert [answer.status_code for answer in answers] == [200] * 5, answers[-1].text
    assert [answer.json()["predictions"] for answer in answers] == [[float(n)] for n in range(5)]
    after = _samples(url, "servewell_retries", "alternating")
    assert after[""] - before.get("", 0) == 5  # each request's first call failed
    assert _samples(url, "servewell_breaker_state", "alternating") == {"": 0}
