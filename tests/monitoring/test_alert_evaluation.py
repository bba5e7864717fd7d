"""Alert rules evaluated on real windows of the prediction log (SQLite and PostgreSQL):
``for`` over windows, states kept across a restart, the ``rollback`` action and its
cooldown."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from monitored_models import write_logged
from servewell.bootstrap import Services
from servewell.core.alerting import AlertState
from servewell.core.ref import ModelRef
from servewell.monitoring.evaluator import AlertEvaluator
from servewell.registry.alerts import AlertStore, roll_back
from servewell.registry.predictions import PredictionRow, SqlPredictionStore
from servewell.settings.monitoring import MonitoringSettings
from serving_models import register_python

MODEL = "clicks"
START = time.time() - 3600  # an hour of windows, an evaluation every 10 s


@pytest.fixture
def clicks(services: Services) -> Services:
    """``clicks`` v1 (labels.py) at production, then v2 (the inverted model) promoted."""
    register_python(services, MODEL, "labels", signature="label.json")
    services.registry.set_alias(MODEL, "production", 1)
    register_python(services, MODEL, "inverted", signature="label.json")
    services.registry.set_alias(MODEL, "production", 2)
    return services


def monitoring(**rule: Any) -> MonitoringSettings:
    fields = {
        "name": "acc-drop", "model": MODEL, "metric": "accuracy", "op": "<",
        "threshold": 0.9, "window": "10s", "for": "25s", **rule,
    }  # fmt: skip
    return MonitoringSettings(evaluation_interval_s=10, alerts=[fields])


def window(services: Services, at: float, accuracy: float, version: int = 2) -> None:
    """Ten labelled predictions of ``version`` logged just before ``at``, the share
    ``accuracy`` of them right (the label sent back is 1; the answer 1 or 0)."""
    rows, labels = [], []
    for i in range(10):
        request_id = f"r-{at}-{i}"
        answer = 1 if i < round(accuracy * 10) else 0
        outputs = json.dumps({"label": [answer]})
        rows.append(
            PredictionRow(at - 5 + i * 0.1, request_id, MODEL, version, None, None, 1.0, False,
                          outputs, json.dumps({"x": [1.0]}))
        )  # fmt: skip
        labels.append((request_id, 1))
    write_logged(services, rows)  # rows and window sketches, as a server writes them
    store = SqlPredictionStore(services.registry)
    store.label(MODEL, labels)


def evaluate(
    evaluator: AlertEvaluator, services: Services, step: int, accuracy: float
) -> list[str]:
    at = START + 10 * step
    window(services, at, accuracy)
    return [stored.event.kind for stored in evaluator.evaluate(at)]


def test_for_neither_fires_on_one_bad_window_nor_resets_on_one_good_one(clicks: Services) -> None:
    evaluator = AlertEvaluator(clicks, monitoring())
    assert evaluate(evaluator, clicks, 0, 1.0) == []
    assert evaluate(evaluator, clicks, 1, 0.5) == ["pending"]  # one bad window
    assert evaluate(evaluator, clicks, 2, 1.0) == []
    assert evaluate(evaluator, clicks, 3, 1.0) == ["cleared"]  # paged no one
    assert evaluate(evaluator, clicks, 4, 0.5) == ["pending"]  # a real problem
    assert evaluate(evaluator, clicks, 5, 1.0) == []  # one good window between
    assert evaluate(evaluator, clicks, 6, 0.5) == []
    assert evaluate(evaluator, clicks, 7, 0.5) == ["firing"]  # 30 s >= for, not reset
    events = AlertStore(clicks.registry).events(rule="acc-drop")
    assert [e.event.kind for e in events] == ["firing", "pending", "cleared", "pending"]
    assert events[0].event.value == pytest.approx(0.5)
    assert events[0].version == 2


def test_a_restarted_evaluator_keeps_the_episode(clicks: Services) -> None:
    first = AlertEvaluator(clicks, monitoring())
    assert evaluate(first, clicks, 0, 0.5) == ["pending"]
    assert evaluate(first, clicks, 1, 0.5) == []
    second = AlertEvaluator(clicks, monitoring())  # a restart, or another replica
    second.restore()
    assert evaluate(second, clicks, 3, 0.5) == ["firing"]  # pending since step 0
    assert AlertStore(clicks.registry).states()["acc-drop"].state is AlertState.FIRING


def test_a_window_without_labels_is_no_sample(clicks: Services) -> None:
    evaluator = AlertEvaluator(clicks, monitoring(**{"for": "0s"}))
    assert evaluator.evaluate(START) == []  # nothing logged: no value, no event
    assert AlertStore(clicks.registry).states()["acc-drop"].value is None


def test_a_firing_rollback_rule_moves_production_back_once(clicks: Services) -> None:
    evaluator = AlertEvaluator(clicks, monitoring(**{"for": "0s", "action": "rollback"}))
    window(clicks, START, 0.2)
    pending, firing = evaluator.evaluate(START)
    assert (pending.event.kind, firing.event.kind) == ("pending", "firing")
    assert pending.note is None
    assert firing.note == "rolled production back from v2 to v1"
    assert clicks.registry.resolve(ModelRef(MODEL)).version == 1
    move = clicks.registry.alias_history(MODEL, "production")[-1]
    assert (move.from_version, move.to_version, move.moved_by) == (2, 1, "alert:acc-drop")
    # Promoted again by hand, v2 is fine for a while, then fails again: the rule fires
    # again, but within the cooldown nothing moves.
    clicks.registry.set_alias(MODEL, "production", 2)
    window(clicks, START + 100, 1.0)
    assert [e.event.kind for e in evaluator.evaluate(START + 100)] == ["resolved"]
    window(clicks, START + 140, 0.2)
    _, again = evaluator.evaluate(START + 140)
    assert again.event.kind == "firing"
    assert again.note is not None
    assert "cooldown" in again.note
    assert clicks.registry.resolve(ModelRef(MODEL)).version == 2


def test_a_rollback_leaves_an_alias_someone_moved_meanwhile(clicks: Services) -> None:
    """The rule fired for v1, but production points at v2 by now: nothing moves."""
    done = roll_back(clicks.registry, MODEL, "production", 1, "acc-drop", cooldown_s=0)
    assert done.move is None
    assert done.note == "no rollback: production does not point at v1"
    assert clicks.registry.resolve(ModelRef(MODEL)).version == 2


def test_old_events_are_pruned(clicks: Services) -> None:
    evaluator = AlertEvaluator(clicks, monitoring(**{"for": "0s"}))
    window(clicks, START, 0.2)
    evaluator.evaluate(START)
    store = AlertStore(clicks.registry)
    assert store.prune(before=START) == 0
    assert store.prune(before=START + 1) == 2
    assert store.events() == []
    assert store.states()["acc-drop"].state is AlertState.FIRING  # states stay
