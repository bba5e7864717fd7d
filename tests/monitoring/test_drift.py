"""Drift and quality of a trained model served by a real server, its prediction log in
the registry database (SQLite and PostgreSQL): a shifted feature is flagged against the
version's training reference, the others are not; labels sent back are scored."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sklearn import metrics

import monitored_models as monitored
from monitored_models import MODEL
from servewell.bootstrap import Services, build_services
from servewell.monitoring.run import monitor
from servewell.monitoring.window import Span
from servewell.registry.predictions import SqlPredictionStore
from servewell.settings import Settings

FULL = {monitored.MODEL: {"monitoring": {"log_inputs": "full"}}}


@pytest.fixture
def trained(tmp_path: Path, database_url: str) -> Iterator[Services]:
    services = build_services(
        Settings(home=tmp_path / "home", database_url=database_url, models=FULL)
    )
    monitored.train(services)
    yield services
    services.close()


def test_a_shifted_feature_is_flagged_and_the_others_are_not(trained: Services) -> None:
    labelled = monitored.loans(200, seed=1)
    shifted = monitored.loans(1000, seed=2, shift=0.5)  # amount: +0.5 sd
    with monitored.serving(trained, models=FULL) as url:
        monitored.predict(url, labelled, "one")  # a row a request: each gets a label
        monitored.predict(url, shifted, "many", batch=50)
        rows = monitored.wait_for_rows(trained, 220)
    assert len(rows) == 220
    monitored.label(trained, labelled, "one")

    [group] = monitor(trained, monitored.MODEL, Span.parse("20")).groups  # the shifted ones
    drift = {found.name: found for found in group.drift}
    assert drift["amount"].rows == 1000
    assert drift["amount"].drift is True
    assert drift["income"].drift is False
    assert drift["plan"].drift is False
    assert {t.test for t in drift["amount"].tests} == {"psi", "ks", "wasserstein"}
    assert {t.test for t in drift["plan"].tests} == {"psi", "chisquare"}
    assert set(drift["plan"].tests[0].bins) == {"basic", "plus", "pro"}  # the categories seen
    assert group.quality is None
    assert "no labels" in (group.quality_note or "")

    [window] = monitor(trained, monitored.MODEL, Span.parse("1h")).groups
    found = window.to_dict()
    # the server's flush thread sketched the requests' own arrays as the rows' JSON reads
    # (statistics to 1e-6: rows that straddle two buckets add their sums in another order)
    [rescanned] = monitor(trained, monitored.MODEL, Span.parse("1h"), rescan=True).groups
    monitored.assert_same_figures(found, rescanned.to_dict())
    assert window.window.logged == rescanned.window.logged == 220
    assert (found["logged"], found["labelled"]) == (220, 200)
    assert found["label_coverage"] == pytest.approx(200 / 220)
    joined = [
        row for row in SqlPredictionStore(trained.registry).rows(MODEL) if row.label is not None
    ]
    truth = np.array([row.label for row in joined])
    guess = np.array([row.outputs["label"][0] for row in joined])
    scores = np.array([row.outputs["probabilities"][0][1] for row in joined])
    quality = found["quality"]
    assert quality["rows"] == len(joined) == 200
    assert quality["accuracy"] == pytest.approx(metrics.accuracy_score(truth, guess))
    assert quality["per_class"]["1"]["recall"] == pytest.approx(metrics.recall_score(truth, guess))
    assert quality["per_class"]["0"]["precision"] == pytest.approx(
        metrics.precision_score(truth, guess, pos_label=0)
    )
    assert quality["roc_auc"] == pytest.approx(metrics.roc_auc_score(truth, scores), abs=1e-6)
    assert found["drift"]["prediction"]["tests"][0]["test"] == "psi"
    assert found["drift"]["prediction_distribution"]["bins"]


def test_unshifted_traffic_is_not_flagged(trained: Services) -> None:
    with monitored.serving(trained, models=FULL) as url:
        monitored.predict(url, monitored.loans(1000, seed=3), "same", batch=100)
        assert len(monitored.wait_for_rows(trained, 10)) == 10
    [group] = monitor(trained, monitored.MODEL, Span.parse("1h")).groups
    assert [found.name for found in group.drift] == ["amount", "income", "plan"]
    assert all(found.drift is False for found in group.drift), [f.to_dict() for f in group.drift]
    assert group.prediction_drift is not None
    assert group.prediction_drift.drift is False


def test_text_inputs_hashed_by_default_are_not_judged(trained: Services) -> None:
    with monitored.serving(trained) as url:  # log_inputs unset: text is hashed
        monitored.predict(url, monitored.loans(100, seed=4), "hashed", batch=100)
        assert len(monitored.wait_for_rows(trained, 1)) == 1
    services = build_services(trained.settings.model_copy(update={"models": {}}))
    try:
        [group] = monitor(services, monitored.MODEL, Span.parse("1h")).groups
    finally:
        services.close()
    assert [found.name for found in group.drift] == ["amount", "income"]
    assert "set it to full" in group.not_judged["plan"]
