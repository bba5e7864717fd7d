"""Each traffic arm's accuracy on its labelled predictions (SQLite and PostgreSQL): rows
written through the prediction log's store, as a server's flusher writes them; only
labelled rows of routed requests since the moment asked, an arm whose alias moved scored
over both versions' rows."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest

from servewell.bootstrap import Services
from servewell.errors import ModelNotFound
from servewell.monitoring.arms import ArmQuality, arm_quality
from servewell.registry.predictions import PredictionRow, SqlPredictionStore
from serving_models import register_python


def _row(
    request_id: str, at: float, version: int, arm: str | None, label: int, cached: bool = False
) -> PredictionRow:
    outputs = None if cached else json.dumps({"label": [label]})
    inputs = None if cached else json.dumps({"x": [1.0]})
    return PredictionRow(at, request_id, "fraud", version, arm, None, 2.0, cached, outputs, inputs)


def test_each_arm_is_scored_on_its_labelled_rows_since_the_moment_asked(
    services: Services,
) -> None:
    for _ in range(3):
        register_python(
            services, "fraud", "labels", signature="label.json", model_class="LabelModel"
        )
    now = time.time()
    since = datetime.fromtimestamp(now - 60, UTC)
    predicted = {
        # arm "1", version 1: 3 of 4 right; one more row has no label
        "a1": (1, "1", 1, 1),
        "a2": (1, "1", 0, 0),
        "a3": (1, "1", 1, 1),
        "a4": (1, "1", 1, 0),
        "a5": (1, "1", 1, None),
        # arm "canary" answered by version 2, then (its alias moved) 3: 2 of 4 right
        "c1": (2, "canary", 1, 1),
        "c2": (2, "canary", 0, 0),
        "c3": (3, "canary", 1, 0),
        "c4": (3, "canary", 0, 1),
        # not routed (a pinned version): no arm's
        "p1": (1, None, 1, 0),
    }
    rows = [_row(rid, now - 10, v, arm, out) for rid, (v, arm, out, _) in predicted.items()]
    rows.append(_row("old", now - 3600, 1, "1", 0))  # before the window: left out
    rows.append(_row("hit", now - 5, 1, "1", 0, cached=True))  # labelled, never scored
    store = SqlPredictionStore(services.registry)
    store.write(rows)
    labels = [(rid, truth) for rid, (*_, truth) in predicted.items() if truth is not None]
    store.label("fraud", [*labels, ("old", 1), ("hit", 1)])

    found = arm_quality(services, "fraud", since)

    assert found == {
        "1": ArmQuality("1", labelled=5, scored=4, metric="accuracy", value=0.75),
        "canary": ArmQuality("canary", labelled=4, scored=4, metric="accuracy", value=0.5),
    }


def test_no_labels_no_figures_and_an_unknown_model_is_refused(services: Services) -> None:
    register_python(services, "fraud", "labels", signature="label.json", model_class="LabelModel")
    SqlPredictionStore(services.registry).write([_row("r1", time.time(), 1, "1", 1)])
    assert arm_quality(services, "fraud", datetime.fromtimestamp(0, UTC)) == {}
    with pytest.raises(ModelNotFound):
        arm_quality(services, "ghost", datetime.fromtimestamp(0, UTC))
