"""Fallback chains through a real app and real Python models that fail on purpose:
another version, the stale cache (in process and in Redis) and a default answer, each
saying who answered, in V2 and REST; the chain's order; caller errors never covered
up; chains that could never answer refused at start-up, by ``servewell serve`` too."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from servewell.bootstrap import build_services
from servewell.errors import InvalidConfig
from servewell.http import create_app
from servewell.settings import Settings
from serving_models import PYTHON_MODELS, InProcessClient, register_python, serve_in_process

UNABLE = "I'm unable to process your request at the moment."
SERVED_BY = "x-servewell-served-by"


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fallback")


@pytest.fixture(scope="module")
def switch_file(folder: Path) -> Path:
    """While this file exists, the ``switch`` model fails."""
    return folder / "switch-fails"


@pytest.fixture(scope="module")
def home(folder: Path, switch_file: Path) -> Path:
    """fraud v1 always fails, v2 answers y = x, v3 always fails; switch answers until
    told to fail; shout is a text model; labels takes x like fraud but gives 'label';
    slow sleeps 100 ms a call."""
    artifacts = folder / "switch-artifacts"
    artifacts.mkdir()
    (artifacts / "config.json").write_text(json.dumps({"fail_while": str(switch_file)}))
    home = folder / "home"
    services = build_services(Settings(home=home))
    try:
        for model in ("always_fails", "hang", "always_fails"):
            register_python(services, "fraud", model)
        register_python(services, "switch", "switch", artifacts=artifacts)
        register_python(services, "shout", "shout", signature="text.json")
        register_python(services, "labels", "labels", signature="label.json")
        register_python(services, "slow", "slow", artifacts=PYTHON_MODELS / "slow_artifacts")
    finally:
        services.close()
    return home


def _settings(home: Path, models: list[str], chains: dict[str, Any], **more: Any) -> Settings:
    return Settings.model_validate(
        {
            "home": home,
            "server": {"models": models},
            "auth": {"enabled": False},
            "rate_limits": {"enabled": False},
            "models": chains,
            **more,
        }
    )


@contextmanager
def _serving(
    home: Path, models: list[str], chains: dict[str, Any], **more: Any
) -> Iterator[InProcessClient]:
    with serve_in_process(create_app(_settings(home, models, chains, **more))) as client:
        yield client


def _rest(client: InProcessClient, model: str, rows: list[Any], **headers: str) -> httpx.Response:
    return client.post(f"/v1/models/{model}:predict", json={"instances": rows}, headers=headers)


def _v2(client: InProcessClient, model: str, xs: list[float]) -> httpx.Response:
    tensor = {"name": "x", "datatype": "FP32", "shape": [len(xs)], "data": xs}
    return client.post(f"/v2/models/{model}/infer", json={"inputs": [tensor]})


def _fresh(count: int = 1) -> list[float]:
    """Inputs no earlier run can have cached (a shared Redis outlives test runs)."""
    return [float(random.randrange(1, 2**20)) for _ in range(count)]


def _fallbacks(client: InProcessClient) -> dict[tuple[str, str, str], float]:
    """``servewell_fallback_total`` by (model, reason, target)."""
    counts = {}
    for line in client.get("/metrics").text.splitlines():
        if line.startswith("servewell_fallback_total{"):
            labels, value = line[len("servewell_fallback_total{") :].split("} ")
            parts = dict(part.split("=") for part in labels.split(","))
            key = tuple(parts[name].strip('"') for name in ("model", "reason", "target"))
            counts[key] = float(value)
    return counts


# --- another version ------------------------------------------------------------------


def test_another_version_answers_for_a_failing_one_in_rest_and_v2(home: Path) -> None:
    with _serving(home, ["fraud@1", "fraud@2"], {"fraud": {"fallbacks": ["fraud@2"]}}) as client:
        xs = _fresh(2)
        rest = _rest(client, "fraud", [{"x": x} for x in xs])
        v2 = _v2(client, "fraud", xs)
        pinned = client.post(
            "/v2/models/fraud/versions/1/infer",
            json={"inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": [3]}]},
        )
        again = _rest(client, "fraud", [{"x": x} for x in xs])
        counts = _fallbacks(client)
    assert rest.status_code == 200, rest.text
    assert rest.headers[SERVED_BY] == "fraud@2; fallback=error"
    assert rest.json() == {"model": "fraud", "version": 2, "predictions": xs}
    assert v2.status_code == 200, v2.text
    assert v2.headers[SERVED_BY] == "fraud@2; fallback=error"
    assert v2.json()["model_version"] == "2"
    assert v2.json()["outputs"][0]["data"] == xs
    assert pinned.headers[SERVED_BY] == "fraud@2; fallback=error"
    # Not cached as version 1's answer: the same request is worked out again.
    assert again.headers["x-cache"] == "miss"
    assert again.headers[SERVED_BY] == "fraud@2; fallback=error"
    assert counts[("fraud", "error", "fraud@2")] == 4


def test_a_version_that_answers_has_no_served_by_header(home: Path) -> None:
    with _serving(home, ["fraud@2"], {"fraud": {"fallbacks": [{"default": {"y": -1}}]}}) as client:
        answer = _rest(client, "fraud", [{"x": 5.0}])
        counts = _fallbacks(client)
    assert answer.status_code == 200
    assert SERVED_BY not in answer.headers
    assert answer.json()["predictions"] == [5.0]
    assert counts == {}


# --- the chain's order, the default ------------------------------------------------------


def test_the_chain_goes_on_past_a_failing_model_and_a_cache_miss_to_the_default(
    home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    chain = {"fallbacks": ["fraud@3", "cache", {"default": {"y": -1}}]}
    logs = caplog.at_level(logging.WARNING, logger="servewell.serving.fallback")
    with logs, _serving(home, ["fraud@1", "fraud@3"], {"fraud": chain}) as client:
        rest = _rest(client, "fraud", [{"x": x} for x in _fresh(3)])
        v2 = _v2(client, "fraud", _fresh(2))
        counts = _fallbacks(client)
    assert rest.status_code == 200, rest.text
    assert rest.headers[SERVED_BY] == "default; fallback=error"
    assert rest.json() == {"model": "fraud", "version": 1, "predictions": [-1.0] * 3}
    assert v2.headers[SERVED_BY] == "default; fallback=error"
    assert v2.json()["outputs"] == [
        {"name": "y", "datatype": "FP32", "shape": [2], "data": [-1.0] * 2}
    ]
    assert counts == {("fraud", "error", "default"): 2}
    messages = [record.getMessage() for record in caplog.records]
    assert any(m.startswith("fallback fraud@3 for fraud@1 failed: ModelFailed") for m in messages)
    assert any(m.startswith("fraud@1 did not answer (error: ") for m in messages)


def test_a_text_model_answers_its_configured_sentence(home: Path) -> None:
    chain = {"fallbacks": [{"default": {"answer": UNABLE}}]}
    with _serving(home, ["shout"], {"shout": chain}) as client:
        fine = _rest(client, "shout", ["hello"])
        failed = _rest(client, "shout", ["please fail", "me too"])
    assert fine.json()["predictions"] == ["HELLO"]
    assert failed.status_code == 200, failed.text
    assert failed.headers[SERVED_BY] == "default; fallback=error"
    assert failed.json()["predictions"] == [UNABLE, UNABLE]


def test_a_shed_request_gets_the_default(home: Path) -> None:
    """One call at a time and room for one more in the queue: of six requests sent at
    once, some are shed (Overloaded), and the default answers them."""
    chain = {
        "fallbacks": [{"default": {"y": -1}}],
        "batching": {"enabled": False, "max_queue_size": 1},
        "cache": {"enabled": False},
    }
    with _serving(home, ["slow"], {"slow": chain}) as client:

        async def six_at_once() -> list[httpx.Response]:
            rows = [{"instances": [{"x": x}]} for x in _fresh(6)]
            sent = (client.client.post("/v1/models/slow:predict", json=row) for row in rows)
            return list(await asyncio.gather(*sent))

        answers: list[httpx.Response] = client.run(six_at_once)
        counts = _fallbacks(client)
    assert [answer.status_code for answer in answers] == [200] * 6
    shed = [a for a in answers if a.headers.get(SERVED_BY) == "default; fallback=overloaded"]
    assert shed, [a.headers.get(SERVED_BY) for a in answers]
    assert all(a.json()["predictions"] == [-1.0] for a in shed)
    assert counts == {("slow", "overloaded", "default"): len(shed)}


def test_when_every_target_fails_the_caller_gets_the_model_s_own_error(home: Path) -> None:
    with _serving(
        home, ["fraud@1", "fraud@3"], {"fraud": {"fallbacks": ["fraud@3", "cache"]}}
    ) as client:
        answer = _rest(client, "fraud", [{"x": 2.0}], **{"X-Request-ID": "all-failed-1"})
        counts = _fallbacks(client)
    assert answer.status_code == 500
    assert answer.json() == {
        "error": "model 'fraud' version 1 failed; request id all-failed-1",
        "code": "model_failed",
    }
    assert SERVED_BY not in answer.headers
    assert counts == {("fraud", "error", "none"): 1}


def test_caller_errors_never_fall_back(home: Path) -> None:
    chain = {"fallbacks": ["fraud@2", {"default": {"y": -1}}]}
    with _serving(home, ["fraud@1", "fraud@2"], {"fraud": chain}) as client:
        wrong = _rest(client, "fraud", [{"x": "not a number"}])
        missing = _rest(client, "fraud", [{"z": 1.0}])
        unknown = client.post(
            "/v2/models/fraud/infer",
            json={
                "inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": [1]}],
                "outputs": [{"name": "nope"}],
            },
        )
        counts = _fallbacks(client)
    for answer in (wrong, missing, unknown):
        assert answer.status_code == 400, answer.text
        assert SERVED_BY not in answer.headers
    assert counts == {}


def test_without_fallbacks_a_model_that_raises_is_a_500_naming_it(
    home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR), _serving(home, ["fraud@1"], {}) as client:
        answer = _rest(client, "fraud", [{"x": 1.0}], **{"X-Request-ID": "no-chain-1"})
    assert answer.status_code == 500
    assert answer.json()["error"] == "model 'fraud' version 1 failed; request id no-chain-1"
    assert "Traceback" not in answer.text
    assert "always fails" not in answer.text
    (logged,) = [r for r in caplog.records if r.getMessage().startswith("request failed")]
    assert logged.exc_info is not None
    assert "RuntimeError: this model always fails" in logged.getMessage()


# --- the stale cache ---------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_an_expired_answer_stands_in_when_the_model_fails(
    home: Path, switch_file: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    more: dict[str, Any] = {"cache": {"backend": backend}}
    if backend == "redis":
        more["redis_url"] = request.getfixturevalue("redis_url")
    chain = {"fallbacks": ["cache"], "cache": {"ttl_s": 0.2}}
    xs = _fresh(2)
    with _serving(home, ["switch"], {"switch": chain}, **more) as client:
        good = _rest(client, "switch", [{"x": x} for x in xs])
        switch_file.touch()
        try:
            stale = _until_served_by(lambda: _rest(client, "switch", [{"x": x} for x in xs]))
            again = _rest(client, "switch", [{"x": x} for x in xs])
            never_seen = _rest(client, "switch", [{"x": x} for x in _fresh()])
        finally:
            switch_file.unlink()
        healed = _rest(client, "switch", [{"x": x} for x in xs])
        counts = _fallbacks(client)
        outcomes = _cache_outcomes(client, "switch")
    assert good.status_code == 200
    assert SERVED_BY not in good.headers
    assert stale.headers[SERVED_BY] == "cache; fallback=error"
    assert stale.headers["x-cache"] == "stale"  # not a miss: nothing was worked out
    assert stale.json() == good.json() == {"model": "switch", "version": 1, "predictions": xs}
    # Served stale, not stored fresh: the model is asked again (and fails again).
    assert again.headers.get_list("x-cache") == ["stale"]
    assert again.headers[SERVED_BY] == "cache; fallback=error"
    assert outcomes["stale"] == counts[("switch", "error", "cache")]
    assert never_seen.status_code == 500  # no stale answer for it: the model's error
    assert healed.status_code == 200
    assert SERVED_BY not in healed.headers
    assert counts[("switch", "error", "cache")] >= 2
    assert counts[("switch", "error", "none")] == 1


def _cache_outcomes(client: InProcessClient, model: str) -> dict[str, float]:
    """``servewell_cache_requests_total`` of ``model`` by outcome."""
    prefix = "servewell_cache_requests_total{"
    counts = {}
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(prefix):
            labels, value = line[len(prefix) :].split("} ")
            parts = dict(part.split("=") for part in labels.split(","))
            if parts["model"].strip('"') == model:
                counts[parts["outcome"].strip('"')] = float(value)
    return counts


def _until_served_by(send: Any) -> httpx.Response:
    """Send until a fallback answers (the fresh entry has to expire first): bounded."""
    deadline = time.monotonic() + 20
    while True:
        answer: httpx.Response = send()
        if SERVED_BY in answer.headers or time.monotonic() > deadline:
            return answer
        time.sleep(0.1)


def test_no_cache_asks_for_no_stale_answer(home: Path, switch_file: Path) -> None:
    chain = {"fallbacks": ["cache"], "cache": {"ttl_s": 0.2}}
    xs = _fresh()
    with _serving(home, ["switch"], {"switch": chain}) as client:
        assert _rest(client, "switch", [{"x": xs[0]}]).status_code == 200
        switch_file.touch()
        try:
            time.sleep(0.3)
            answer = _rest(client, "switch", [{"x": xs[0]}], **{"Cache-Control": "no-cache"})
        finally:
            switch_file.unlink()
    assert answer.status_code == 500
    assert SERVED_BY not in answer.headers


# --- refused at start-up -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("models", "chain", "says"),
    [
        (
            ["fraud@1", "labels"],
            ["labels"],
            "models.fraud.fallbacks: labels (labels@1) has no output 'y'",
        ),
        (["fraud@1", "shout"], ["shout@1"], "models.fraud.fallbacks: shout@1 has no input 'x'"),
        (
            ["fraud@1"],
            ["fraud@2"],
            "models.fraud.fallbacks: fraud@2 is not served here "
            "(add it to --models: --models fraud@1,fraud@2)",
        ),
        (
            ["fraud@1"],
            ["fraud@9"],
            "models.fraud.fallbacks: fraud@9: model 'fraud' has no version 9",
        ),
        (
            ["fraud@1"],
            [{"default": {"label": 0}}],
            "models.fraud.fallbacks: default names the output 'label'; the model gives 'y'",
        ),
        (
            ["fraud@1"],
            [{"default": {"y": "abc"}}],
            "models.fraud.fallbacks: default 'y': 'abc' is not a number",
        ),
        (
            ["fraud@1"],
            [{"default": {"y": [1, 2]}}],
            "models.fraud.fallbacks: default 'y': [1, 2] has the shape [2]",
        ),
    ],
    ids=[
        "wrong-output",
        "wrong-input",
        "not-served",
        "not-registered",
        "unknown-output",
        "not-a-number",
        "shape",
    ],
)
def test_a_chain_that_could_never_answer_is_refused_at_start_up(
    home: Path, models: list[str], chain: list[Any], says: str
) -> None:
    serving = _serving(home, models, {"fraud": {"fallbacks": chain}})
    with pytest.raises(InvalidConfig) as raised, serving:
        pass
    assert raised.value.message.startswith(says)
    assert "\n" not in raised.value.message


def test_cache_fallback_needs_the_cache(home: Path) -> None:
    chain = {"fallbacks": ["cache"], "cache": {"enabled": False}}
    with (
        pytest.raises(
            InvalidConfig, match=r"models.fraud.fallbacks: 'cache' needs the response cache"
        ),
        _serving(home, ["fraud@1"], {"fraud": chain}),
    ):
        pass


def test_servewell_serve_refuses_it_with_one_line_and_exit_9(home: Path, folder: Path) -> None:
    config = folder / "wrong-fallback.yaml"
    config.write_text("models:\n  fraud:\n    fallbacks: [labels]\n")
    process = subprocess.run(
        [str(Path(sys.executable).parent / "servewell"), "serve", "--port", "0", "--no-auth"],
        cwd=folder,
        env={
            **os.environ,
            "SERVEWELL_HOME": str(home),
            "SERVEWELL_CONFIG": str(config),
            "SERVEWELL_SERVER__MODELS": '["fraud@1", "labels"]',
        },
        capture_output=True,
        text=True,
        timeout=180,
    )
    reason = "models.fraud.fallbacks: labels (labels@1) has no output 'y'"
    assert process.returncode == 9, process.stderr + process.stdout
    assert process.stderr.strip() == f"error: the server failed to start: {reason}"
