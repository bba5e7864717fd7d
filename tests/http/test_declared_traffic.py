"""Traffic policies declared in the settings, on a real server (uvicorn on a loopback
port) and a real registry (SQLite and PostgreSQL): the registry's policy wins unless the
file says ``source: file``, in both directions and while the server runs; a declared
policy the registry cannot serve stops the start-up naming the key; and every logged
prediction carries the arm (and version) that answered it."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from servewell.bootstrap import Services, build_services, build_traffic_policies
from servewell.core.traffic import Arm
from servewell.errors import InvalidConfig
from servewell.http import create_app
from servewell.http.app import ServewellApp
from servewell.registry.predictions import SqlPredictionStore
from servewell.registry.traffic import TrafficStore
from servewell.settings import AuthSettings, CacheSettings, ServerSettings, Settings
from serving_models import register_python, serve_in_thread

WAIT_S = 60.0  # generous: the machine is shared; the server polls every 0.5 s


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    """'fraud' versions 1-3 (label = x > 0), production → 1."""
    services = build_services(settings)
    for _ in range(3):
        register_python(
            services, "fraud", "labels", signature="label.json", model_class="LabelModel"
        )
    services.registry.set_alias("fraud", "production", 1)
    yield services
    services.close()


def _app(services: Services, **declared: Any) -> ServewellApp:
    settings = Settings(
        home=services.settings.home,
        database_url=services.settings.database_url,
        auth=AuthSettings(enabled=False),
        cache=CacheSettings(enabled=False),
        server=ServerSettings(models=["fraud"]),
        monitoring={"flush_interval_s": 0.05},
        traffic={"fraud": declared},
    )
    return create_app(settings, services)


def _answer(url: str, user: str) -> tuple[str | None, str]:
    """The (arm, version) that answered ``user``."""
    answer = httpx.post(
        f"{url}/v1/models/fraud:predict",
        json={"instances": [{"x": 1.0}]},
        headers={"X-User-ID": user, "X-Request-ID": f"{user}-{time.monotonic_ns()}"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    return answer.headers.get("x-servewell-arm"), answer.headers["x-servewell-version"]


def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.1)


def test_the_file_applies_until_the_registry_has_a_policy_and_again_once_cleared(
    services: Services,
) -> None:
    store = TrafficStore(services.registry)
    with serve_in_thread(_app(services, split={"2": 100})) as server:
        assert _answer(server.url, "u1") == ("2", "2")  # the file's: the registry has none
        store.set_split("fraud", [Arm("3", 100)])
        _until(lambda: _answer(server.url, "u2") == ("3", "3"), "the registry's split wins")
        store.clear("fraud")
        _until(lambda: _answer(server.url, "u3") == ("2", "2"), "the file's split is back")


def test_source_file_wins_over_the_registry_at_start_and_while_running(
    services: Services,
) -> None:
    store = TrafficStore(services.registry)
    store.set_split("fraud", [Arm("3", 100)])
    app = _app(services, split={"2": 100}, source="file")
    with serve_in_thread(app) as server:
        assert _answer(server.url, "u1") == ("2", "2")
        store.set_split("fraud", [Arm("1", 50), Arm("3", 50)])
        changed = store.revision()
        _until(lambda: app.running.router.policies.revision == changed, "the change is read")
        assert {_answer(server.url, f"user-{n}") for n in range(20)} == {("2", "2")}


def test_logged_predictions_carry_the_arm_and_version_that_answered(
    services: Services,
) -> None:
    app = _app(services, split={"1": 50, "3": 50})
    with serve_in_thread(app) as server:
        answered = [_answer(server.url, f"user-{n}") for n in range(30)]
        pinned = httpx.post(
            f"{server.url}/v1/models/fraud/versions/1:predict",
            json={"instances": [{"x": 1.0}]},
            timeout=30,
        )
        assert pinned.status_code == 200
        store = SqlPredictionStore(services.registry)
        _until(lambda: len(store.rows("fraud")) == 31, "every prediction is logged")
    rows = store.rows("fraud")
    logged = Counter((row.arm, row.version) for row in rows)
    assert logged == Counter([*((arm, int(version)) for arm, version in answered), (None, 1)])
    assert {arm for arm, _ in answered} == {"1", "3"}  # both arms answered someone


@pytest.mark.parametrize(
    ("declared", "says"),
    [
        ({"split": {"2": 50, "9": 50}}, "traffic.fraud.split: model 'fraud' has no version 9"),
        ({"split": {"2": 50, "blue": 50}}, "traffic.fraud.split: model 'fraud' has no alias"),
        ({"shadow": {"version": 7, "percent": 5}}, "traffic.fraud.shadow: model 'fraud' has no"),
        ({"split": {"1": 50, "production": 50}}, "traffic.fraud.split: arms '1' and 'production'"),
    ],
)
def test_a_declared_policy_the_registry_cannot_serve_stops_the_start_up(
    services: Services, declared: dict[str, Any], says: str
) -> None:
    settings = Settings(home=services.settings.home, traffic={"fraud": declared})
    with pytest.raises(InvalidConfig) as caught:
        build_traffic_policies(settings, services)
    assert says in caught.value.message
    assert caught.value.message.startswith("invalid settings (")


def test_a_declared_policy_for_a_model_not_registered_is_refused(services: Services) -> None:
    settings = Settings(home=services.settings.home, traffic={"fraudd": {"split": {"1": 100}}})
    with pytest.raises(InvalidConfig, match=r"traffic\.fraudd: model 'fraudd' is not registered"):
        build_traffic_policies(settings, services)


@pytest.mark.slow
def test_a_server_with_a_bad_declared_policy_exits_9_naming_the_key(
    services: Services, tmp_path: Path
) -> None:
    """``servewell serve`` as a process, its settings file naming a version that does not
    exist: one line, exit 9, never ready."""
    import os
    import subprocess
    import sys

    from redis_server import free_port

    config = tmp_path / "servewell.yaml"
    config.write_text("traffic:\n  fraud:\n    split: {2: 50, 9: 50}\n", encoding="utf-8")
    env = {
        **os.environ,
        "SERVEWELL_HOME": str(services.settings.home),
        "SERVEWELL_CONFIG": str(config),
    }
    if services.settings.database_url:
        env["SERVEWELL_DATABASE_URL"] = services.settings.database_url
    command = [str(Path(sys.executable).parent / "servewell"), "serve", "--no-auth"]
    done = subprocess.run(
        [*command, "--port", str(free_port()), "--models", "fraud"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 9, done.stdout + done.stderr
    assert "traffic.fraud.split: model 'fraud' has no version 9" in done.stderr


def test_feedback_scores_each_arm_end_to_end(services: Services) -> None:
    """Routed by the split, logged with their arm, labelled through the feedback route:
    each arm's accuracy is its own requests' (every version answers label 1 for x = 1;
    the truth says 1 for arm '1''s users and 0 for arm '3''s)."""
    from datetime import UTC, datetime, timedelta

    from servewell.monitoring.arms import arm_quality

    since = datetime.now(UTC) - timedelta(minutes=1)
    with serve_in_thread(_app(services, split={"1": 50, "3": 50})) as server:
        answered = {}
        for n in range(20):
            request_id = f"req-{n}"
            answer = httpx.post(
                f"{server.url}/v1/models/fraud:predict",
                json={"instances": [{"x": 1.0}]},
                headers={"X-User-ID": f"user-{n}", "X-Request-ID": request_id},
                timeout=30,
            )
            assert answer.status_code == 200, answer.text
            answered[request_id] = answer.headers["x-servewell-arm"]
        store = SqlPredictionStore(services.registry)
        _until(lambda: len(store.rows("fraud")) == 20, "every prediction is logged")
        labels = [
            {"request_id": rid, "label": 1 if arm == "1" else 0} for rid, arm in answered.items()
        ]
        sent = httpx.post(f"{server.url}/v1/models/fraud/feedback", json=labels, timeout=30)
        assert sent.status_code == 200, sent.text
        assert sent.json()["accepted"] == 20
    found = arm_quality(services, "fraud", since)
    counts = Counter(answered.values())
    assert {arm: (q.labelled, q.value) for arm, q in found.items()} == {
        "1": (counts["1"], 1.0),
        "3": (counts["3"], 0.0),
    }
