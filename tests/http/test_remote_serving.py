"""Remote ``v2`` models end to end, all real processes: a ``servewell serve`` as the V2
upstream and the scripted upstream; specs registered with the real CLI; a second
``servewell serve`` calling them: V2 and REST answers, retries and their spacing,
Retry-After, the deadline, the breaker opening onto the fallback chain, and the
credential in no log, error body, database or artifact."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from scripted_upstream import ScriptedUpstream, scripted_upstream
from servewell.http import create_app
from servewell.settings import AuthSettings, ServerSettings, Settings
from serving_models import build_adder_home, serve_in_thread, serve_process

pytestmark = pytest.mark.slow
SECRET = "sk-remote-test-4242-not-real"
ADDER_METADATA = {
    "platform": "scripted",
    "inputs": [
        {"name": "x", "datatype": "FP32", "shape": [-1, 1]},
        {"name": "y", "datatype": "FP32", "shape": [-1, 1]},
    ],
    "outputs": [{"name": "sum", "datatype": "FP32", "shape": [-1, 1]}],
}
SETTINGS = {
    "models": {
        "rplain": {"timeout_ms": 8000, "breaker": {"enabled": False}},
        "rbreak": {
            "timeout_ms": 8000,
            "breaker": {"failures_to_open": 3, "cooldown_s": 600},
            "fallbacks": ["adder"],
        },
    }
}
#: Each call reaches the model: the response cache would answer a repeated request.
NO_CACHE = {"Cache-Control": "no-cache"}
PAIR = {
    "inputs": [
        {"name": "x", "datatype": "FP32", "shape": [1, 1], "data": [1.5]},
        {"name": "y", "datatype": "FP32", "shape": [1, 1], "data": [2.0]},
    ]
}


def servewell(
    home: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The real CLI, on ``home``."""
    environment = {**os.environ, "SERVEWELL_HOME": str(home), **(env or {})}
    command = [str(Path(sys.executable).parent / "servewell"), *args]
    return subprocess.run(
        command, cwd=home.parent, env=environment, capture_output=True, text=True, timeout=120
    )


def write_spec(folder: Path, name: str, **fields: object) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(fields))
    return path


@pytest.fixture(scope="module")
def upstream_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = build_adder_home(tmp_path_factory.mktemp("upstream") / "home")
    with serve_process(home, "--no-auth", "--models", "adder") as (url, _):
        yield url


@pytest.fixture(scope="module")
def scripted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScriptedUpstream]:
    metadata = tmp_path_factory.mktemp("scripted") / "adder.json"
    metadata.write_text(json.dumps(ADDER_METADATA))
    with scripted_upstream("--v2-metadata", str(metadata)) as running:
        yield running


@pytest.fixture(scope="module")
def home(
    tmp_path_factory: pytest.TempPathFactory, upstream_url: str, scripted: ScriptedUpstream
) -> Path:
    """Home B: a local adder (the fallback), and three remote models registered by CLI."""
    home = build_adder_home(tmp_path_factory.mktemp("remote") / "home")
    folder = home.parent
    (folder / "servewell.yaml").write_text(yaml.safe_dump(SETTINGS))
    env = {"REMOTE_TOKEN": SECRET}
    backoff = {"first_s": 0.05, "max_s": 0.2}
    specs = {
        "radder": {"url": upstream_url, "model": "adder", "credential_env": "REMOTE_TOKEN"},
        "rplain": {
            "url": scripted.url,
            "model": "adder",
            "credential_env": "REMOTE_TOKEN",
            "retries": 3,
        },
        "rbreak": {"url": scripted.url, "model": "adder"},
    }
    for name, fields in specs.items():
        spec = write_spec(folder, name, kind="v2", backoff=backoff, **fields)
        done = servewell(home, "register", str(spec), "--format", "remote", "--name", name, env=env)
        assert done.returncode == 0, done.stderr
    return home


@pytest.fixture(scope="module")
def served(home: Path) -> Iterator[tuple[str, list[str]]]:
    log: list[str] = []
    models = "adder,radder,rplain,rbreak"
    env = {"REMOTE_TOKEN": SECRET}
    with serve_process(home, "--no-auth", "--models", models, env=env, log=log) as (url, _):
        yield url, log


def test_a_remote_model_answers_v2_and_rest_like_a_local_one(
    served: tuple[str, list[str]],
) -> None:
    url, _ = served
    v2 = httpx.post(f"{url}/v2/models/radder/infer", json=PAIR, headers=NO_CACHE, timeout=30)
    assert v2.status_code == 200, v2.text
    assert v2.json()["outputs"] == [
        {"name": "sum", "datatype": "FP32", "shape": [1, 1], "data": [3.5]}
    ]
    rows = {"instances": [{"x": 1, "y": 2}, {"x": 0.5, "y": 0.25}]}
    rest = httpx.post(f"{url}/v1/models/radder:predict", json=rows, timeout=30)
    local = httpx.post(f"{url}/v1/models/adder:predict", json=rows, timeout=30)
    assert rest.status_code == 200, rest.text
    assert rest.json()["predictions"] == local.json()["predictions"] == [3.0, 0.75]
    metadata = httpx.get(f"{url}/v2/models/radder", timeout=30).json()
    assert metadata["platform"] == "remote_v2"
    assert [i["name"] for i in metadata["inputs"]] == ["x", "y"]
    bad = httpx.post(f"{url}/v2/models/radder/infer", json={"inputs": []}, timeout=30)
    assert bad.status_code == 400


def test_retries_honour_retry_after_and_carry_the_credential(
    served: tuple[str, list[str]], scripted: ScriptedUpstream
) -> None:
    url, _ = served
    scripted.script([{"status": 429, "retry_after": "1"}, {"status": 500}, {"drop": "before"}])
    answer = httpx.post(f"{url}/v2/models/rplain/infer", json=PAIR, headers=NO_CACHE, timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.json()["outputs"][0]["data"] == [1.5]  # the scripted upstream echoes x
    received = scripted.received()
    assert len(received) == 4
    assert received[1]["t"] - received[0]["t"] >= 1.0
    assert {r["headers"]["authorization"] for r in received} == {f"Bearer {SECRET}"}
    metrics = httpx.get(f"{url}/metrics", timeout=30).text
    retried = [
        line
        for line in metrics.splitlines()
        if line.startswith("servewell_retries_total") and 'model="rplain"' in line
    ]
    assert retried
    assert float(retried[0].rsplit(" ", 1)[1]) >= 3


def test_an_upstream_that_keeps_failing_is_a_5xx_without_its_details(
    served: tuple[str, list[str]], scripted: ScriptedUpstream
) -> None:
    url, _ = served
    scripted.script([], default={"status": 503, "retry_after": "0"})
    answer = httpx.post(f"{url}/v2/models/rplain/infer", json=PAIR, headers=NO_CACHE, timeout=30)
    assert answer.status_code == 503
    assert "retry-after" in answer.headers
    assert SECRET not in answer.text
    assert "scripted" not in answer.text  # the upstream's own error body
    assert len(scripted.received()) == 4  # retries: 3


def test_the_deadline_bounds_a_slow_upstream(
    served: tuple[str, list[str]], scripted: ScriptedUpstream
) -> None:
    url, _ = served
    scripted.script([{"latency_ms": 20000}])
    answer = httpx.post(
        f"{url}/v2/models/rplain/infer",
        json=PAIR,
        headers={"Request-Timeout": "500", **NO_CACHE},
        timeout=15,
    )
    assert answer.status_code == 504, answer.text
    assert len(scripted.received()) == 1


def test_the_breaker_opens_and_the_fallback_answers(
    served: tuple[str, list[str]], scripted: ScriptedUpstream
) -> None:
    url, _ = served
    scripted.script([], default={"status": 500})
    first = httpx.post(f"{url}/v2/models/rbreak/infer", json=PAIR, headers=NO_CACHE, timeout=30)
    second = httpx.post(f"{url}/v2/models/rbreak/infer", json=PAIR, headers=NO_CACHE, timeout=30)
    for answer in (first, second):
        assert answer.status_code == 200, answer.text
        assert answer.json()["outputs"][0]["data"] == [3.5]  # the local adder: x + y
        assert answer.headers["x-servewell-served-by"].startswith("adder@1")
    assert len(scripted.received()) == 3  # the second request never reached it
    models = httpx.get(f"{url}/v1/models/rbreak", timeout=30).text
    assert "circuit breaker open" in models


def test_the_credential_is_in_no_log_database_or_artifact(
    home: Path, served: tuple[str, list[str]]
) -> None:
    url, log = served
    httpx.post(f"{url}/v2/models/radder/infer", json=PAIR, headers=NO_CACHE, timeout=30)
    for path in home.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
    stored = [p for p in home.rglob("*") if p.is_file() and b"credential_env" in p.read_bytes()]
    assert stored  # the spec is stored, naming the variable only
    assert all(SECRET not in line for line in log)


def test_the_server_log_has_no_credential(home: Path, scripted: ScriptedUpstream) -> None:
    """After the server stopped: everything it wrote, read whole."""
    log: list[str] = []
    env = {"REMOTE_TOKEN": SECRET}
    scripted.script([{"status": 500}])
    with serve_process(home, "--no-auth", "--models", "rplain", env=env, log=log) as (url, _):
        httpx.post(f"{url}/v2/models/rplain/infer", json=PAIR, headers=NO_CACHE, timeout=30)
    text = "".join(log)
    assert "rplain" in text
    assert SECRET not in text


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"kind": "v3", "url": "http://127.0.0.1:1", "model": "m"}, "kind"),
        ({"kind": "v2", "url": "http://127.0.0.1:1", "model": "m", "api_key": "x"}, "api_key"),
        ({"kind": "v2", "url": "ftp://host", "model": "m"}, "url"),
        ({"kind": "v2", "url": "http://127.0.0.1:1"}, "model"),
    ],
)
def test_a_bad_spec_is_one_line_and_exit_2(
    home: Path, fields: dict[str, object], message: str
) -> None:
    spec = write_spec(home.parent, "bad", **fields)
    done = servewell(home, "register", str(spec), "--format", "remote", "--name", "bad")
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert message in done.stderr


def test_an_unreachable_upstream_registers_nothing(home: Path) -> None:
    from redis_server import free_port

    spec = write_spec(
        home.parent, "gone", kind="v2", url=f"http://127.0.0.1:{free_port()}", model="m"
    )
    done = servewell(home, "register", str(spec), "--format", "remote", "--name", "gone")
    assert done.returncode == 11, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert "cannot be reached" in done.stderr
    listed = servewell(home, "models", "--json")
    assert "gone" not in listed.stdout


def test_a_v2_upstream_without_the_model_registers_nothing(home: Path, upstream_url: str) -> None:
    spec = write_spec(home.parent, "absent", kind="v2", url=upstream_url, model="nope")
    done = servewell(home, "register", str(spec), "--format", "remote", "--name", "absent")
    assert done.returncode == 11, done.stderr
    assert "answered 404" in done.stderr


def test_a_server_without_the_credential_serves_the_rest_and_says_what_to_set(
    home: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("REMOTE_TOKEN", raising=False)
    settings = Settings(
        home=home,
        auth=AuthSettings(enabled=False),
        server=ServerSettings(models=["adder", "radder"]),
    )
    with caplog.at_level(logging.INFO), serve_in_thread(create_app(settings)) as server:
        local = httpx.post(f"{server.url}/v2/models/adder/infer", json=PAIR, timeout=30)
        remote = httpx.post(f"{server.url}/v2/models/radder/infer", json=PAIR, timeout=30)
        rows = {"instances": [{"x": 1, "y": 2}]}
        rest = httpx.post(f"{server.url}/v1/models/radder:predict", json=rows, timeout=30)
    assert local.status_code == 200, local.text
    assert remote.status_code == rest.status_code == 503, remote.text
    assert rest.json()["code"] == "not_ready"
    for answer in (remote, rest):
        assert "environment variable REMOTE_TOKEN" in answer.json()["error"]
        assert "REMOTE_TOKEN=… servewell serve" in answer.json()["error"]
    [failure] = [r for r in caplog.records if r.getMessage().startswith("cannot serve")]
    assert failure.levelno == logging.ERROR
    assert failure.exc_info is None
    line = failure.getMessage()
    assert "radder" in line
    assert "environment variable REMOTE_TOKEN" in line
    assert "\n" not in line
