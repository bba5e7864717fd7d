"""A label that can never match the model's predictions ("nan" or "yes" for numbered
classes, as an attacker sent) is counted as unscored; the window's quality comes from
the others, and nothing raises (it crashed `servewell monitor` and every alert rule on
the model)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest

from monitored_models import write_logged
from servewell.bootstrap import Services
from servewell.monitoring.run import monitor
from servewell.monitoring.window import Span
from servewell.registry.predictions import PredictionRow, SqlPredictionStore
from serving_models import register_python

MODEL = "clicks"


@pytest.mark.parametrize("rescan", [False, True])
def test_labels_that_cannot_match_are_unscored(services: Services, rescan: bool) -> None:
    register_python(services, MODEL, "labels", signature="label.json")
    now = time.time()
    rows = [
        PredictionRow(now - 60 + i, f"r{i}", MODEL, 1, None, None, 1.0, False,
                      json.dumps({"label": [1]}), json.dumps({"x": [1.0]}))
        for i in range(6)
    ]  # fmt: skip
    write_logged(services, rows)
    labels = [("r0", 1), ("r1", 1), ("r2", 0), ("r3", "nan"), ("r4", "yes"), ("r5", "1")]
    SqlPredictionStore(services.registry).label(MODEL, labels)
    span = Span.parse("1h", end=datetime.fromtimestamp(now, UTC))
    [group] = monitor(services, MODEL, span, rescan=rescan).to_dict()["groups"]
    assert group["labelled"] == 6
    assert group["unscored"] == 2  # "nan" and "yes"
    assert group["quality"]["rows"] == 4
    assert group["quality"]["accuracy"] == pytest.approx(0.75)  # "1" read as 1
