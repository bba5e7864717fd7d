"""Serving by the stored traffic policy, on real ``servewell serve`` processes sharing one
registry: sticky assignment (the same user, the same arm and version on two servers and
after a restart, and the very arm ``core/assignment.assign`` gives), a split set with the
CLI reaching a running server (a version it does not serve yet is loaded first), paths
naming a version never rerouted, the ``X-Servewell-Version`` / ``X-Servewell-Arm``
headers, the response cache never answering with another arm's answer, and the per-arm
metrics. No timing assertions: waits are polls with generous bounds."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import httpx
import pytest

from servewell.bootstrap import build_services
from servewell.core.assignment import assign
from servewell.core.traffic import Arm, TrafficPolicy
from servewell.registry.traffic import TrafficStore
from servewell.settings import Settings
from serving_models import register_python, serve_process

CLIENT_TIMEOUT_S = 60.0
WAIT_S = 60.0  # generous: the machine is shared; the servers poll every 0.5 s
#: Requests per server in the sticky tests: each is a different user.
USERS_OVER_HTTP = 1500
#: The rate limit (per client address) would refuse the thousands of requests here.
ENV = {"SERVEWELL_RATE_LIMITS__ENABLED": "false"}


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """Model 'fraud' with versions 1-3 (the sum model), production → 1, canary → 2."""
    home = tmp_path / "home"
    services = build_services(Settings(home=home))
    try:
        for _ in range(3):
            register_python(services, "fraud", "sum", signature="sum.json")
        services.registry.set_alias("fraud", "production", 1)
        services.registry.set_alias("fraud", "canary", 2)
    finally:
        services.close()
    return home


def _split(home: Path, *arms: Arm, sticky_header: str | None = None) -> TrafficPolicy:
    services = build_services(Settings(home=home))
    try:
        return TrafficStore(services.registry).set_split(
            "fraud", list(arms), sticky_header=sticky_header
        )
    finally:
        services.close()


def _cli(home: Path, *args: str) -> str:
    """``servewell ARGS`` as its own process on ``home``'s registry."""
    done = subprocess.run(
        [str(Path(sys.executable).parent / "servewell"), *args],
        env={**os.environ, "SERVEWELL_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


Served = AbstractContextManager[tuple[str, "subprocess.Popen[str]"]]


@pytest.fixture
def serve(home: Path) -> Callable[[], Served]:
    """Starts one more server on ``home`` (serving 'fraud') each time it is called."""
    return lambda: serve_process(home, "--no-auth", "--models", "fraud", env=ENV, drain=True)


def _rest(client: httpx.Client, url: str, path: str = "fraud", **headers: str) -> httpx.Response:
    answer = client.post(
        f"{url}/v1/models/{path}:predict",
        json={"instances": [{"x": 1, "y": 2}]},
        headers=headers,
        timeout=CLIENT_TIMEOUT_S,
    )
    assert answer.status_code == 200, answer.text
    return answer


def _v2(client: httpx.Client, url: str, path: str = "fraud", **headers: str) -> httpx.Response:
    inputs = [{"name": n, "datatype": "FP32", "shape": [1], "data": [1]} for n in "xy"]
    answer = client.post(
        f"{url}/v2/models/{path}/infer",
        json={"inputs": inputs},
        headers=headers,
        timeout=CLIENT_TIMEOUT_S,
    )
    assert answer.status_code == 200, answer.text
    return answer


def _served_arms(url: str, users: range) -> dict[str, tuple[str, str]]:
    """User id -> (arm, version) as the server answered each user's request."""
    served = {}
    with httpx.Client() as client:
        for user in users:
            answer = _rest(client, url, **{"X-User-ID": f"user-{user}"})
            version = str(answer.json()["version"])
            assert answer.headers["x-servewell-version"] == version
            served[f"user-{user}"] = (answer.headers["x-servewell-arm"], version)
    return served


def _poll(done: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not done():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.2)


def test_the_same_user_gets_the_same_arm_on_two_servers_and_after_a_restart(
    home: Path, serve: Callable[[], Served]
) -> None:
    policy = _split(home, Arm("1", 90), Arm("canary", 10))
    expected = {
        f"user-{user}": assign(policy.experiment_id, f"user-{user}", policy.arms).target
        for user in range(10_000)
    }
    shares = Counter(expected.values())
    assert abs(shares["1"] / 10_000 - 0.90) <= 0.02
    assert abs(shares["canary"] / 10_000 - 0.10) <= 0.02
    version_of = {"1": "1", "canary": "2"}
    users = range(USERS_OVER_HTTP)
    with serve() as (first, _), serve() as (second, _):
        on_first = _served_arms(first, users)
        on_second = _served_arms(second, users)
    assert on_first == on_second
    assert on_first == {user: (expected[user], version_of[expected[user]]) for user in on_first}
    assert {arm for arm, _ in on_first.values()} == {"1", "canary"}
    with serve() as (restarted, _):
        assert _served_arms(restarted, users) == on_first


def test_a_split_set_with_the_cli_reaches_a_running_server(
    home: Path, serve: Callable[[], Served]
) -> None:
    with serve() as (url, _), httpx.Client() as client:
        plain = _rest(client, url)
        assert plain.json()["version"] == 1  # production
        assert "x-servewell-arm" not in plain.headers

        _cli(home, "traffic", "split", "fraud", "canary=100")
        _poll(lambda: _rest(client, url).headers.get("x-servewell-arm") == "canary", "canary")
        answer = _v2(client, url)
        assert answer.headers["x-servewell-version"] == "2"
        assert answer.json()["model_version"] == "2"

        # Version 3 was not served: it is loaded and warmed up before requests go to it.
        _cli(home, "traffic", "split", "fraud", "3=100")
        _poll(lambda: _rest(client, url).headers.get("x-servewell-arm") == "3", "version 3")
        assert _rest(client, url).json()["version"] == 3
        assert _rest(client, url, "fraud/versions/3").json()["version"] == 3

        _cli(home, "traffic", "clear", "fraud")
        _poll(lambda: "x-servewell-arm" not in _rest(client, url).headers, "no split")
        assert _rest(client, url).json()["version"] == 1


def test_a_path_naming_a_version_is_never_rerouted(home: Path, serve: Callable[[], Served]) -> None:
    _split(home, Arm("2", 100))
    with serve() as (url, _), httpx.Client() as client:
        assert _rest(client, url).headers["x-servewell-arm"] == "2"
        for user in range(20):
            rest = _rest(client, url, "fraud/versions/1", **{"X-User-ID": str(user)})
            v2 = _v2(client, url, "fraud/versions/1", **{"X-User-ID": str(user)})
            assert rest.json()["version"] == 1
            assert v2.json()["model_version"] == "1"
            for answer in (rest, v2):
                assert "x-servewell-arm" not in answer.headers
                assert "x-servewell-version" not in answer.headers


def test_the_response_cache_answers_each_arm_with_its_own_version(
    home: Path, serve: Callable[[], Served]
) -> None:
    """The same body from users on different arms: a cached answer of one arm is never
    another arm's (the key names the version; the fast lane leaves routed models alone)."""
    policy = _split(home, Arm("1", 50), Arm("2", 50), sticky_header="X-Account")
    with serve() as (url, _), httpx.Client() as client:
        cached = Counter()
        for user in range(200):
            account = f"account-{user}"
            arm = assign(policy.experiment_id, account, policy.arms).target
            answer = _v2(client, url, **{"X-Account": account})
            assert answer.headers["x-servewell-arm"] == arm
            assert answer.json()["model_version"] == arm
            cached[answer.headers["x-cache"]] += 1
        assert cached["hit"] >= 190  # one miss per version (twice if two raced)

        # Without the sticky header: an arm at random by weight, each arm seen.
        seen = {_v2(client, url).headers["x-servewell-arm"] for _ in range(100)}
        assert seen == {"1", "2"}


def test_requests_are_counted_per_arm(home: Path, serve: Callable[[], Served]) -> None:
    policy = _split(home, Arm("production", 70), Arm("3", 30))
    users = [f"u{user}" for user in range(60)]
    arms = Counter(assign(policy.experiment_id, user, policy.arms).target for user in users)
    with serve() as (url, _), httpx.Client() as client:
        for user in users:
            _rest(client, url, **{"X-User-ID": user})
        _rest(client, url, "fraud/versions/3")  # not routed: not counted per arm
        refused = client.post(
            f"{url}/v1/models/fraud:predict", json={"rows": []}, headers={"X-User-ID": "u0"}
        )
        assert refused.status_code == 400
        text = client.get(f"{url}/metrics", timeout=CLIENT_TIMEOUT_S).text
        shown = json.loads(_cli(home, "traffic", "show", "fraud", "--server", url, "--json"))
        table = _cli(home, "traffic", "show", "fraud", "--server", url)

    def value(name: str, **labels: str) -> float:
        spelled = ",".join(f'{key}="{labels[key]}"' for key in sorted(labels))  # as rendered
        found = re.search(rf"^{name}\{{{spelled}\}} (\S+)$", text, re.MULTILINE)
        return float(found.group(1)) if found else 0.0

    first = assign(policy.experiment_id, "u0", policy.arms).target
    version_of = {"production": "1", "3": "3"}
    for arm, count in arms.items():
        labels = {"model": "fraud", "arm": arm, "version": version_of[arm]}
        assert value("servewell_arm_requests_total", **labels, status_class="2xx") == count
        errors = value("servewell_arm_requests_total", **labels, status_class="4xx")
        assert errors == (1 if arm == first else 0)
        assert value("servewell_arm_request_duration_seconds_count", **labels) == count + errors
    measured = {arm["target"]: arm["measured"] for arm in shown["arms"]}
    for arm, count in arms.items():
        requests = count + (1 if arm == first else 0)
        assert measured[arm]["requests"] == requests
        assert measured[arm]["errors"] == 0  # a 400 is the caller's, not the arm's
        assert measured[arm]["versions"] == [version_of[arm]]
        assert 0 < measured[arm]["p50_s"] <= measured[arm]["p99_s"]
    assert "p99" in table
    assert "requests" in table


def test_arms_follow_their_alias_and_fall_back_to_the_default_when_it_goes(
    home: Path, serve: Callable[[], Served]
) -> None:
    _split(home, Arm("canary", 100))
    with serve() as (url, _), httpx.Client() as client:
        assert _rest(client, url).headers["x-servewell-version"] == "2"
        _cli(home, "alias", "set", "fraud", "canary", "3")  # version 3: loaded first
        _poll(lambda: _rest(client, url).headers["x-servewell-version"] == "3", "canary at 3")
        _cli(home, "alias", "remove", "fraud", "canary")
        _poll(lambda: _rest(client, url).headers["x-servewell-version"] == "1", "the default")
        answer = _rest(client, url)
        assert answer.headers["x-servewell-arm"] == "canary"  # still named, still counted
        assert answer.json()["version"] == 1
