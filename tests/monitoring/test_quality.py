"""Quality over a window of logged rows equals scikit-learn's on the rows joined with
their labels (SQLite and PostgreSQL); rows written through the prediction log's store,
as a server's flusher writes them (without window sketches: read with ``rescan``), for
models registered without a reference."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from sklearn import metrics

from servewell.bootstrap import Services
from servewell.monitoring.run import monitor
from servewell.monitoring.window import Span
from servewell.registration.register import RegisterOptions, register_estimator
from servewell.registry.predictions import PredictionRow, SqlPredictionStore
from serving_models import register_iris


def _row(
    i: int, at: float, outputs: Any, *, version: int = 1, cached: bool = False
) -> PredictionRow:
    inputs = None if cached else json.dumps({"input": [[1.0, 2.0, 3.0, 4.0]]})
    encoded = None if cached else json.dumps(outputs)
    return PredictionRow(
        at, f"r{i}", "iris", version, None, None, 1.0 + i % 7, cached, encoded, inputs
    )


def test_classifier_quality_equals_sklearn_on_the_labelled_rows(
    services: Services, classifier: Any, iris: tuple[np.ndarray, np.ndarray]
) -> None:
    register_iris(services, classifier, iris[0])
    rng = np.random.default_rng(3)
    features, target = iris
    noisy = features + rng.normal(0, 0.6, features.shape).astype(np.float32)  # some mistakes
    proba = classifier.predict_proba(noisy)
    predicted = proba.argmax(axis=1)
    now = datetime.now(UTC).timestamp()
    rows = [
        _row(
            i,
            now - 60 + i * 0.1,
            {"label": [int(predicted[i])], "probabilities": [proba[i].tolist()]},
        )
        for i in range(len(target))
    ]
    rows += [_row(500 + i, now - 30, None, cached=True) for i in range(5)]
    rows.append(_row(900, now - 20, {"label": [0], "probabilities": [[1, 0, 0]]}, version=2))
    store = SqlPredictionStore(services.registry)
    store.write(rows)
    labelled = list(range(0, len(target), 2)) + list(range(1, 41, 2))  # not every row
    store.label("iris", [(f"r{i}", int(target[i])) for i in labelled] + [("r500", 1)])

    report = monitor(services, "iris", Span.parse("1h"), rescan=True)
    first, second = report.groups
    assert (first.version, second.version) == (1, 2)
    found = first.to_dict()
    assert (found["logged"], found["cached"]) == (155, 5)
    assert found["labelled"] == len(labelled) + 1
    assert found["label_coverage"] == pytest.approx((len(labelled) + 1) / 155)
    assert found["unscored"] == 1  # the cached answer's label
    truth, guess, scores = target[labelled], predicted[labelled], proba[labelled]
    quality = found["quality"]
    assert quality["rows"] == len(labelled)
    assert quality["accuracy"] == pytest.approx(metrics.accuracy_score(truth, guess))
    precision, recall, f1, support = metrics.precision_recall_fscore_support(
        truth, guess, labels=[0, 1, 2], zero_division=0
    )
    for k in range(3):
        per_class = quality["per_class"][str(k)]
        assert per_class["precision"] == pytest.approx(precision[k])
        assert per_class["recall"] == pytest.approx(recall[k])
        assert per_class["f1"] == pytest.approx(f1[k])
        assert per_class["support"] == support[k]
    assert quality["macro_f1"] == pytest.approx(metrics.f1_score(truth, guess, average="macro"))
    assert quality["roc_auc"] == pytest.approx(
        metrics.roc_auc_score(truth, scores, multi_class="ovr", labels=[0, 1, 2]), abs=1e-6
    )
    latency = found["latency_ms"]
    every = [1.0 + i % 7 for i in range(len(target))] + [1.0 + (500 + i) % 7 for i in range(5)]
    assert latency["p99"] == pytest.approx(np.percentile(every, 99))
    assert "no training reference profile" in found["drift"]["note"]
    assert "servewell train" in found["drift"]["note"]
    assert found["drift"]["features"] == []
    assert second.to_dict()["quality"] is None
    assert "no labels" in second.quality_note


def test_regressor_quality_equals_sklearn(services: Services, tmp_path: Any) -> None:
    from sklearn.linear_model import LinearRegression

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3)).astype(np.float32)
    y = x @ np.array([1.0, -2.0, 0.5]) + rng.normal(0, 0.3, 200)
    model = LinearRegression().fit(x, y)
    register_estimator(services, "price", model, options=RegisterOptions(sample={"input": x}))
    values = model.predict(x)
    now = datetime.now(UTC).timestamp()
    store = SqlPredictionStore(services.registry)
    store.write(
        [
            PredictionRow(
                now - 100 + i,
                f"p{i}",
                "price",
                1,
                None,
                None,
                2.0,
                False,
                json.dumps({"variable": [[float(values[i])]]}),
                json.dumps({"input": [x[i].tolist()]}),
            )
            for i in range(200)
        ]
    )
    store.label("price", [(f"p{i}", float(y[i])) for i in range(120)])
    [group] = monitor(services, "price", Span.parse("1h"), rescan=True).groups
    quality = group.to_dict()["quality"]
    truth, guess = y[:120], values[:120]
    assert quality["task"] == "regression"
    assert quality["mae"] == pytest.approx(metrics.mean_absolute_error(truth, guess))
    assert quality["rmse"] == pytest.approx(np.sqrt(metrics.mean_squared_error(truth, guess)))
    assert quality["r2"] == pytest.approx(metrics.r2_score(truth, guess))


def test_count_windows_and_slices_over_time(
    services: Services, classifier: Any, iris: tuple[np.ndarray, np.ndarray]
) -> None:
    register_iris(services, classifier, iris[0])
    end = datetime.now(UTC)
    outputs = {"label": [1], "probabilities": [[0.1, 0.8, 0.1]]}
    # one row every 10 minutes over the last 20 hours
    rows = [
        _row(i, (end - timedelta(minutes=10 * (120 - i))).timestamp(), outputs) for i in range(120)
    ]
    store = SqlPredictionStore(services.registry)
    store.write(rows)
    store.label("iris", [(f"r{i}", 1 if i % 4 else 0) for i in range(120)])

    newest = monitor(services, "iris", Span.parse("30", end=end)).groups[0].to_dict()
    assert newest["logged"] == 30
    assert newest["first_at"] == datetime.fromtimestamp(rows[90].at, UTC).isoformat()
    assert newest["quality"]["accuracy"] == pytest.approx(
        np.mean([i % 4 != 0 for i in range(90, 120)])
    )
    assert len(newest["slices"]) == 10  # 30 rows in runs of 3 (the last slices stay empty)

    day = monitor(services, "iris", Span.parse("1d", end=end), version=1, rescan=True)
    day = day.groups[0].to_dict()
    assert day["logged"] == 120
    assert len(day["slices"]) == 10  # 12 slices of 2 h; rows in the last 20 h
    assert sum(part["logged"] for part in day["slices"]) == 120
    assert all(part["value"] == pytest.approx(0.75) for part in day["slices"])

    hour = monitor(services, "iris", Span.parse("1h", end=end), rescan=True).groups[0]
    assert hour.window.logged == 6  # 10, 20, ..., 60 minutes ago (the first one just in)
