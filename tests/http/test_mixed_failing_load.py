"""A mixed failing load on one real ``servewell serve`` process (issue #13): five Python
models served at once, one healthy and four failing in their own way, under concurrent
requests. Every answer is one of the documented ones, the healthy model answers 200
every time, no request hangs, and the server keeps serving after.

The models (``tests/python_models``):

- ``healthy`` (sum.py): ``x + y``; half its requests carry a ``Request-Timeout``.
- ``flaky`` (flaky.py, every 3rd call fails), unbatched so that exactly every 3rd
  request fails, with a breaker that opens at a 30% error rate over 10 calls: 500s
  naming the model and the request id, and 503s with ``Retry-After`` while it is open.
- ``slow`` (slow.py, 100 ms a call) with ``timeout_ms: 50``: 504s naming the model and
  the deadline, then 503s when its breaker opens on the timeouts.
- ``failing`` (always_fails.py) with a fallback to a default answer: every request
  answers 200 with the default and ``X-Servewell-Served-By``.
- ``hang`` (hang.py, a negative ``x`` never returns) with ``timeout_ms: 500``: 504s, then
  503s; its one worker thread stays stuck for the rest of the test.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from servewell.bootstrap import build_services
from servewell.settings import Settings
from serving_models import PYTHON_MODELS, register_python, serve_process

REQUESTS_PER_MODEL = 60
CONCURRENCY = 16
CLIENT_TIMEOUT_S = 30.0
"""Far above any deadline here: a request still open this long has hung."""
OVERALL_TIMEOUT_S = 240.0
UNABLE = -1.0
"""The failing model's default answer for ``y``."""

ENV = {
    "SERVEWELL_MODELS__FLAKY__BATCHING__ENABLED": "false",
    "SERVEWELL_MODELS__FLAKY__BREAKER": json.dumps(
        {"error_rate_to_open": 0.3, "min_requests": 10, "cooldown_s": 1}
    ),
    "SERVEWELL_MODELS__SLOW__TIMEOUT_MS": "50",
    "SERVEWELL_MODELS__SLOW__BREAKER": json.dumps({"cooldown_s": 1}),
    "SERVEWELL_MODELS__FAILING__FALLBACKS": json.dumps([{"default": {"y": UNABLE}}]),
    "SERVEWELL_MODELS__FAILING__BREAKER": json.dumps({"cooldown_s": 1}),
    "SERVEWELL_MODELS__HANG__TIMEOUT_MS": "500",
}
MODELS = ("healthy", "flaky", "slow", "failing", "hang")


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("mixed-load")
    flaky = folder / "flaky"
    flaky.mkdir()
    (flaky / "config.json").write_text(json.dumps({"fail_every": 3}))
    services = build_services(Settings(home=folder / "home"))
    try:
        register_python(services, "healthy", "sum", signature="sum.json")
        register_python(services, "flaky", "flaky", artifacts=flaky)
        register_python(services, "slow", "slow", artifacts=PYTHON_MODELS / "slow_artifacts")
        register_python(services, "failing", "always_fails")
        register_python(services, "hang", "hang")
    finally:
        services.close()
    (folder / "unpacked").mkdir()
    return folder


@dataclass
class Answers:
    """What one model's requests got: the status of each (or the client's exception's
    name), and the responses themselves."""

    statuses: Counter[str] = field(default_factory=Counter)
    responses: list[tuple[str, httpx.Response]] = field(default_factory=list)


def _body(model: str, n: int) -> dict[str, list[object]]:
    if model == "healthy":
        return {"instances": [{"x": float(n), "y": 1.0}]}
    if model == "hang":
        return {"instances": [-1.0 - n]}
    return {"instances": [float(n + 1)]}  # never all-zero: always_fails answers zeros


async def _one(
    client: httpx.AsyncClient, gate: asyncio.Semaphore, model: str, n: int, answers: Answers
) -> None:
    request_id = f"mixed-{model}-{n}"
    headers = {"X-Request-ID": request_id}
    if model == "healthy" and n % 2:
        headers["Request-Timeout"] = "10000"
    async with gate:
        try:
            response = await client.post(
                f"/v1/models/{model}:predict", json=_body(model, n), headers=headers
            )
        except httpx.HTTPError as exc:
            answers.statuses[type(exc).__name__] += 1
            return
    answers.statuses[str(response.status_code)] += 1
    answers.responses.append((request_id, response))


async def _drive(url: str, models: tuple[str, ...]) -> dict[str, Answers]:
    """``REQUESTS_PER_MODEL`` requests to each model, shuffled together, at most
    ``CONCURRENCY`` at a time."""
    answers = {model: Answers() for model in models}
    order = [(model, n) for model in models for n in range(REQUESTS_PER_MODEL)]
    random.Random(13).shuffle(order)
    gate = asyncio.Semaphore(CONCURRENCY)
    limits = httpx.Limits(max_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=url, timeout=CLIENT_TIMEOUT_S, limits=limits) as client:
        calls = [_one(client, gate, model, n, answers[model]) for model, n in order]
        await asyncio.wait_for(asyncio.gather(*calls), OVERALL_TIMEOUT_S)
    return answers


def test_a_mixed_failing_load_gets_only_documented_answers(folder: Path) -> None:
    env = {"TMPDIR": str(folder / "unpacked"), **ENV}
    log: list[str] = []
    serving = serve_process(
        folder / "home",
        "--no-auth",
        "--models",
        ",".join(MODELS),
        env=env,
        log=log,
        drain=True,  # dozens of tracebacks: more than a pipe holds
    )
    with serving as (url, _):
        answers = asyncio.run(_drive(url, MODELS))
        counts = {model: dict(answers[model].statuses) for model in MODELS}
        print(f"statuses by model: {counts}")
        _check_healthy(answers["healthy"])
        _check_flaky(answers["flaky"])
        _check_timed_out(answers["slow"], "slow", 50)
        _check_failing(answers["failing"])
        _check_timed_out(answers["hang"], "hang", 500)
        _check_still_serving(url)
    assert "Traceback" in log[0]  # the 500s' tracebacks went to the log, not the bodies


def _check_healthy(answers: Answers) -> None:
    assert answers.statuses == {"200": REQUESTS_PER_MODEL}, answers.statuses
    for request_id, response in answers.responses:
        n = float(request_id.rsplit("-", 1)[1])
        assert response.json()["predictions"][0]["sum"] == n + 1.0
        assert "x-servewell-served-by" not in response.headers


def _check_flaky(answers: Answers) -> None:
    """500 for a failed call, 503 while the breaker is open; both seen."""
    assert set(answers.statuses) <= {"200", "500", "503"}, answers.statuses
    assert answers.statuses["500"] >= 1, answers.statuses
    assert answers.statuses["503"] >= 1, answers.statuses  # the breaker opened
    for request_id, response in answers.responses:
        if response.status_code == 500:
            _assert_model_error(response, "flaky", request_id)
        elif response.status_code == 503:
            _assert_unavailable(response, "flaky")


def _check_timed_out(answers: Answers, model: str, timeout_ms: int) -> None:
    """Past its deadline: 504 naming the model and the deadline; 503 with Retry-After
    once its breaker opens on the timeouts (or its queue sheds); never a 200 (slow
    takes twice its deadline, hang for ever)."""
    assert set(answers.statuses) <= {"503", "504"}, answers.statuses
    assert answers.statuses["504"] >= 1, answers.statuses
    for _, response in answers.responses:
        body = response.json()
        if response.status_code == 504:
            assert body["code"] == "deadline_exceeded", body
            assert f"model '{model}'" in body["error"], body
            assert f"{timeout_ms} ms" in body["error"], body
        else:
            _assert_unavailable(response, model)


def _check_failing(answers: Answers) -> None:
    """Every request answered by the default, saying so (the breaker's refusals too)."""
    assert answers.statuses == {"200": REQUESTS_PER_MODEL}, answers.statuses
    reasons: Counter[str] = Counter()
    for _, response in answers.responses:
        served_by = response.headers["x-servewell-served-by"]
        assert served_by.startswith("default; fallback="), served_by
        reasons[served_by.split("=", 1)[1]] += 1
        assert response.json()["predictions"] == [UNABLE]
    assert set(reasons) <= {"error", "unavailable"}, reasons
    assert reasons["error"] >= 1, reasons
    assert reasons["unavailable"] >= 1, reasons  # the breaker opened


def _assert_model_error(response: httpx.Response, model: str, request_id: str) -> None:
    body = response.json()
    assert body["code"] == "model_failed", body
    assert f"model '{model}' version 1 failed" in body["error"], body
    assert request_id in body["error"], body
    assert "Traceback" not in response.text
    assert "RuntimeError" not in response.text


def _assert_unavailable(response: httpx.Response, model: str) -> None:
    """A 503 that says when to come back: the breaker open (or the model's queue full)."""
    assert int(response.headers["retry-after"]) >= 1, response.headers
    body = response.json()
    assert body["code"] in {"model_unavailable", "overloaded"}, body
    assert f"'{model}'" in body["error"], body


def _check_still_serving(url: str) -> None:
    assert httpx.get(f"{url}/v2/health/ready", timeout=CLIENT_TIMEOUT_S).status_code == 200
    answer = httpx.post(
        f"{url}/v1/models/healthy:predict",
        json={"instances": [{"x": 2.0, "y": 3.0}]},
        timeout=CLIENT_TIMEOUT_S,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"][0]["sum"] == 5.0
    assert httpx.get(f"{url}/metrics", timeout=CLIENT_TIMEOUT_S).status_code == 200
