"""Canary rollouts on real ``servewell serve`` processes sharing one registry, started
with the CLI: a failing candidate aborts by itself while the primary keeps answering;
a good one, on two servers, completes once (its events not doubled) and production
moves to it; a server killed mid-rollout and started again carries it on. No timing
assertions: every wait is a poll with a generous bound."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from servewell.bootstrap import Services, build_services
from servewell.core.rollout import Rollout, RolloutState
from servewell.registry.rollouts import RolloutStore
from servewell.registry.traffic import TrafficStore
from servewell.settings import Settings
from serving_models import register_python, serve_process

pytestmark = pytest.mark.slow

WAIT_S = 120.0  # generous: the machine is shared; a step is judged every 2 s at best
ENV = {"SERVEWELL_RATE_LIMITS__ENABLED": "false"}
STEPS = ("--every", "2s", "--min-requests", "5", "--max-p99-ratio", "1000")


def _home(tmp_path: Path, database_url: str | None, candidate: str) -> Path:
    """'fraud' v1 (production: answers ``y = x``) and v2 (``candidate``)."""
    home = tmp_path / "home"
    good = tmp_path / "good"
    good.mkdir()
    (good / "config.json").write_text(json.dumps({"fail_every": 10**9}), encoding="utf-8")
    with _services(home, database_url) as services:
        register_python(services, "fraud", "flaky", artifacts=good)
        if candidate == "good":
            register_python(services, "fraud", "flaky", artifacts=good)
        else:
            register_python(services, "fraud", candidate)
        services.registry.set_alias("fraud", "production", 1)
    return home


class _services:
    def __init__(self, home: Path, database_url: str | None) -> None:
        settings = Settings(home=home, **({"database_url": database_url} if database_url else {}))
        self.services = build_services(settings)

    def __enter__(self) -> Services:
        return self.services

    def __exit__(self, *exc: object) -> None:
        self.services.close()


def _env(database_url: str | None) -> dict[str, str]:
    return {**ENV, **({"SERVEWELL_DATABASE_URL": database_url} if database_url else {})}


def _cli(home: Path, database_url: str | None, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "servewell"), *args],
        env={**os.environ, "SERVEWELL_HOME": str(home), **_env(database_url)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _rollout(home: Path, database_url: str | None) -> Rollout:
    with _services(home, database_url) as services:
        return RolloutStore(services.registry).get("fraud")


def _events(home: Path, database_url: str | None) -> list[str]:
    with _services(home, database_url) as services:
        store = RolloutStore(services.registry)
        return [event.kind for event in store.events(store.get("fraud"))]


def _ask(client: httpx.Client, url: str) -> httpx.Response:
    return client.post(
        f"{url}/v1/models/fraud:predict", json={"instances": [{"x": 1.0}]}, timeout=60
    )


def _until(
    done: Callable[[], bool], urls: list[str], client: httpx.Client
) -> Iterator[httpx.Response]:
    """Requests to each of ``urls`` in turn until ``done()``; fails past WAIT_S."""
    deadline = time.monotonic() + WAIT_S
    while not done():
        assert time.monotonic() < deadline, "the rollout did not get there in time"
        for _ in range(5):
            for url in urls:
                yield _ask(client, url)


def _served_by(home: Path, database_url: str | None, url: str, version: int) -> None:
    """Until 20 answers in a row are 200s from ``version`` (the servers poll the registry)."""
    deadline = time.monotonic() + WAIT_S
    in_a_row = 0
    with httpx.Client() as client:
        while in_a_row < 20:
            assert time.monotonic() < deadline, f"{url} never settled on version {version}"
            answer = _ask(client, url)
            good = answer.status_code == 200 and answer.json()["version"] == version
            in_a_row = in_a_row + 1 if good else 0


def test_a_failing_candidate_aborts_by_itself(tmp_path: Path) -> None:
    home = _home(tmp_path, None, "always_fails")
    log: list[str] = []
    served = serve_process(home, "--no-auth", "--models", "fraud", env=ENV, drain=True, log=log)
    with served as (url, _):
        started = _cli(
            home, None, "rollout", "start", "fraud", "--to", "2", "--steps", "50,100", *STEPS
        )
        assert started.returncode == 0, started.stderr
        assert "candidate at 50 %" in started.stdout

        def aborted() -> bool:
            return _rollout(home, None).state is RolloutState.ABORTED

        with httpx.Client() as client:
            statuses = {answer.status_code for answer in _until(aborted, [url], client)}
        assert statuses <= {200, 500, 503}
        _served_by(home, None, url, 1)
        metrics = httpx.get(f"{url}/metrics", timeout=30).text
        assert 'servewell_rollout_aborts_total{model="fraud",reason="error_rate"} 1.0' in metrics
        assert 'servewell_rollout_step_percent{model="fraud"} 0.0' in metrics
    status = _cli(home, None, "rollout", "status", "fraud")
    assert status.returncode == 0, status.stderr
    assert "aborted: error_rate bound broken at 50%" in " ".join(status.stdout.split())
    assert _events(home, None) == ["started", "aborted"]
    with _services(home, None) as services:
        assert TrafficStore(services.registry).get("fraud") is None
    assert "rollout of fraud to version 2 aborted" in log[0]


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_two_servers_complete_a_good_rollout_once(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    database_url = None if backend == "sqlite" else str(request.getfixturevalue("postgres_url"))
    home = _home(tmp_path, database_url, "good")
    env = _env(database_url)
    first = serve_process(home, "--no-auth", "--models", "fraud", env=env, drain=True)
    second = serve_process(home, "--no-auth", "--models", "fraud", env=env, drain=True)
    with first as (one, _), second as (two, _):
        started = _cli(
            home,
            database_url,
            "rollout",
            "start",
            "fraud",
            "--to",
            "2",
            "--steps",
            "20,50,100",
            *STEPS,
        )
        assert started.returncode == 0, started.stderr

        def completed() -> bool:
            return _rollout(home, database_url).state is RolloutState.COMPLETED

        with httpx.Client() as client:
            for answer in _until(completed, [one, two], client):
                assert answer.status_code == 200, answer.text
        for url in (one, two):
            _served_by(home, database_url, url, 2)
    assert _events(home, database_url) == ["started", "step", "completed"]
    with _services(home, database_url) as services:
        last = services.registry.alias_history("fraud", "production")[-1]
        assert (last.from_version, last.to_version, last.moved_by) == (1, 2, "rollout")
        assert TrafficStore(services.registry).get("fraud") is None


def test_a_server_killed_mid_rollout_carries_on_once_started_again(tmp_path: Path) -> None:
    home = _home(tmp_path, None, "good")
    served = serve_process(home, "--no-auth", "--models", "fraud", env=ENV, drain=True)
    with served as (url, _):
        started = _cli(
            home, None, "rollout", "start", "fraud", "--to", "2", "--steps", "10,50,100", *STEPS
        )
        assert started.returncode == 0, started.stderr

        def stepped() -> bool:
            return _rollout(home, None).step_index >= 1

        with httpx.Client() as client:
            for answer in _until(stepped, [url], client):
                assert answer.status_code == 200, answer.text
    # killed (SIGKILL: its lease is not given up, and lapses), then started again
    assert _rollout(home, None).state is RolloutState.RUNNING
    served = serve_process(home, "--no-auth", "--models", "fraud", env=ENV, drain=True)
    with served as (url, _):

        def completed() -> bool:
            return _rollout(home, None).state is RolloutState.COMPLETED

        with httpx.Client() as client:
            for answer in _until(completed, [url], client):
                assert answer.status_code == 200, answer.text
        _served_by(home, None, url, 2)
    assert _events(home, None) == ["started", "step", "completed"]
