"""End to end on a real server (SQLite and PostgreSQL): a worse version is promoted,
its predictions are logged and labelled through the feedback endpoint, the accuracy
rule fires, and ``production`` is back on the previous version, which serves again; a
webhook receiver that fails twice gets each event exactly once."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from servewell.bootstrap import Services
from servewell.core.ref import ModelRef
from servewell.http import create_app
from servewell.registry.alerts import AlertStore, StoredEvent
from servewell.settings import Settings
from serving_models import register_python, serve_in_thread
from webhook_receiver import Receiver, running_receiver

MODEL = "clicks"
WAIT_S = 60.0
RULE = {
    "name": "acc-drop", "model": MODEL, "metric": "accuracy", "op": "<", "threshold": 0.9,
    "window": "1h", "for": "1s", "severity": "page", "action": "rollback",
}  # fmt: skip


@pytest.fixture
def receiver(request: pytest.FixtureRequest) -> Iterator[Receiver]:
    """A webhook receiver failing ``request.param`` POSTs (parametrized), else 2."""
    with running_receiver(getattr(request, "param", 2)) as server:
        yield server


def serving_settings(
    services: Services, webhook: str | None, rule: dict[str, Any] = RULE, **monitoring: Any
) -> Settings:
    return Settings.model_validate(
        {
            "home": services.settings.home,
            "database_url": services.settings.database_url,
            "server": {"models": [MODEL]},
            "auth": {"enabled": False},
            "cache": {"enabled": False},
            "monitoring": {
                "flush_interval_s": 0.05,
                "evaluation_interval_s": 0.5,
                "alerts": [rule],
                "webhooks": [{"url": webhook, "timeout_s": 5, "max_attempts": 5}]
                if webhook
                else [],
                **monitoring,
            },
        }
    )


def predict(url: str, request_id: str) -> int:
    answer = httpx.post(
        f"{url}/v1/models/{MODEL}:predict",
        json={"instances": [1.0]},
        headers={"x-request-id": request_id},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    label: int = answer.json()["predictions"][0]
    return label


def predict_and_label(url: str, answer: int, count: int = 20) -> None:
    """``count`` predictions, each ``answer``, then their labels (1) through feedback."""
    ids = [f"r{i}" for i in range(count)]
    for request_id in ids:
        assert predict(url, request_id) == answer
    labels = [{"request_id": request_id, "label": 1} for request_id in ids]

    def labelled() -> bool:  # the log is written in batches: send until all are known
        sent = httpx.post(f"{url}/v1/models/{MODEL}/feedback", json=labels, timeout=30)
        assert sent.status_code == 200, sent.text
        return bool(sent.json()["accepted"] == count)

    wait_until(labelled, "the predictions to be logged")


def wait_until(check: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + WAIT_S
    while not (found := check()):
        assert time.monotonic() < deadline, f"waited {WAIT_S} s for {what}"
        time.sleep(0.05)
    return found


def firing_gauge(url: str) -> float | None:
    text = httpx.get(f"{url}/metrics", timeout=30).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "servewell_alert_firing" and sample.labels["rule"] == "acc-drop":
                return sample.value
    return None


def test_a_worse_release_rolls_itself_back(services: Services, receiver: Receiver) -> None:
    def events() -> list[StoredEvent]:
        return list(reversed(AlertStore(services.registry).events(rule="acc-drop")))

    register_python(services, MODEL, "labels", signature="label.json")  # v1: right
    services.registry.set_alias(MODEL, "production", 1)
    register_python(services, MODEL, "inverted", signature="label.json")  # v2: wrong
    with serve_in_thread(create_app(serving_settings(services, receiver.url), services)) as server:
        services.registry.set_alias(MODEL, "production", 2, by="user:test")
        wait_until(lambda: predict(server.url, "probe") == 0, "v2 to serve")
        predict_and_label(server.url, answer=0)  # v2's wrong answers, labelled 1
        wait_until(lambda: services.registry.resolve(ModelRef(MODEL)).version == 1, "the rollback")
        wait_until(lambda: predict(server.url, "after") == 1, "v1 to serve again")
        # v2's episode ends with the move; v1 (no labels yet) starts afresh.
        wait_until(lambda: len(events()) == 3, "the episode to end")
        wait_until(lambda: firing_gauge(server.url) == 0.0, "the firing gauge to fall")
        wait_until(lambda: len(receiver.accepted) == 3, "the webhook's deliveries")
    move = services.registry.alias_history(MODEL, "production")[-1]
    assert (move.from_version, move.to_version, move.moved_by) == (2, 1, "alert:acc-drop")
    pending, firing, resolved = events()  # once each: no second rollback
    assert (pending.event.kind, firing.event.kind, resolved.event.kind) == (
        "pending",
        "firing",
        "resolved",
    )
    assert firing.version == 2
    assert firing.note == "rolled production back from v2 to v1"
    assert firing.event.value == 0.0
    assert resolved.version == 2
    assert resolved.note == "production moved from v2 to v1"
    assert receiver.attempts == 5  # the first event failed twice, then each went once
    assert [(body["kind"], body["version"]) for body in receiver.accepted] == [
        ("pending", 2),
        ("firing", 2),
        ("resolved", 2),
    ]
    assert receiver.accepted[1]["note"] == "rolled production back from v2 to v1"


def test_new_labels_get_the_rules_evaluated_before_the_interval(services: Services) -> None:
    """An interval of 10 minutes: only the feedback route's nudge can make it fire."""
    register_python(services, MODEL, "inverted", signature="label.json")
    rule = {**RULE, "for": "0s"}
    settings = serving_settings(services, None, rule, evaluation_interval_s=600)
    with serve_in_thread(create_app(settings, services)) as server:
        wait_until(lambda: AlertStore(services.registry).states(), "the first evaluation")
        predict_and_label(server.url, answer=0)
        wait_until(lambda: firing_gauge(server.url) == 1.0, "the rule to fire")
    [firing, pending] = AlertStore(services.registry).events(rule="acc-drop")  # newest first
    assert (pending.event.kind, firing.event.kind) == ("pending", "firing")
    assert firing.note == "no rollback: production does not point at v1"  # there is none
