"""``servewell serve --workers 2``: both workers run the alert service, one holds the
``alerts`` lease and evaluates, so every event is stored once; either worker's
``/metrics`` shows the rule firing."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from servewell.bootstrap import build_services
from servewell.registry.alerts import AlertStore
from servewell.settings import Settings
from serving_models import register_python, serve_process

pytestmark = pytest.mark.slow

WAIT_S = 90.0
RULE = {
    "name": "acc-drop", "model": "clicks", "metric": "accuracy", "op": "<",
    "threshold": 0.9, "window": "1h", "for": "0s",
}  # fmt: skip


def wait_until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not check():
        assert time.monotonic() < deadline, f"waited {WAIT_S} s for {what}"
        time.sleep(0.1)


def predict_and_label(client: httpx.Client, url: str, count: int = 20) -> None:
    for i in range(count):
        answer = client.post(
            f"{url}/v1/models/clicks:predict",
            json={"instances": [1.0]},
            headers={"x-request-id": f"r{i}"},
        )
        assert answer.status_code == 200, answer.text
    labels = [{"request_id": f"r{i}", "label": 1} for i in range(count)]
    wait_until(
        lambda: (
            client.post(f"{url}/v1/models/clicks/feedback", json=labels).json()["accepted"] == count
        ),
        "the predictions to be logged",
    )


def test_two_workers_store_each_event_once(tmp_path: Path) -> None:
    home = tmp_path / "home"
    services = build_services(Settings(home=home))
    register_python(services, "clicks", "inverted", signature="label.json")  # always wrong
    (tmp_path / "unpacked").mkdir()
    env = {
        "TMPDIR": str(tmp_path / "unpacked"),
        "SERVEWELL_MONITORING__FLUSH_INTERVAL_S": "0.05",
        "SERVEWELL_MONITORING__EVALUATION_INTERVAL_S": "0.5",
        "SERVEWELL_MONITORING__ALERTS": json.dumps([RULE]),
    }
    store = AlertStore(services.registry)

    def state() -> str | None:
        found = store.states().get("acc-drop")
        return None if found is None else str(found.state)

    def evaluated_at() -> float:
        state = store.states().get("acc-drop")
        return 0.0 if state is None or state.evaluated_at is None else state.evaluated_at

    try:
        serving = serve_process(home, "--no-auth", "--models", "clicks", "--workers", "2",
                                env=env, drain=True)  # fmt: skip
        with serving as (url, _), httpx.Client(timeout=30) as client:
            predict_and_label(client, url)
            wait_until(lambda: state() == "firing", "the rule to fire")
            fired_at = evaluated_at()
            # A few more rounds, in which a second evaluator would repeat the events.
            wait_until(lambda: evaluated_at() >= fired_at + 2, "more evaluations")
            for _ in range(4):  # answered by either worker
                text = client.get(f"{url}/metrics").text
                assert 'servewell_alert_firing{rule="acc-drop"} 1.0' in text
        kinds = [stored.event.kind for stored in store.events(rule="acc-drop")]
        assert kinds == ["firing", "pending"]
    finally:
        services.close()
