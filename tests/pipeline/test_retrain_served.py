"""Retraining with feedback end to end: predictions answered by a real server (its log
in the registry database, SQLite and PostgreSQL), labels sent back, and the challenger
learning from the rows the log kept in full."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import monitored_models as monitored
from servewell.bootstrap import Services, build_services
from servewell.pipeline.labelled_log import SEVERAL_ROWS
from servewell.pipeline.retrain import challenge_champion
from servewell.registry.predictions import SqlPredictionStore
from servewell.settings import Settings
from servewell.training.data import dataset_from_frame

FULL = {monitored.MODEL: {"monitoring": {"log_inputs": "full"}}}


@pytest.fixture
def trained(tmp_path: Path, database_url: str) -> Iterator[Services]:
    services = build_services(
        Settings(home=tmp_path / "home", database_url=database_url, models=FULL)
    )
    monitored.train(services, rows=600)
    yield services
    services.close()


def test_served_predictions_with_labels_join_the_training_rows(trained: Services) -> None:
    one = monitored.loans(120, seed=4)
    many = monitored.loans(40, seed=5)
    with monitored.serving(trained, models=FULL) as url:
        monitored.predict(url, one, "one")  # a row a request: each can take a label
        monitored.predict(url, many, "many", batch=10)
        assert len(monitored.wait_for_rows(trained, 124)) == 124
    monitored.label(trained, one, "one")
    labels = [(f"many-{start}", 1) for start in range(0, 40, 10)]
    assert SqlPredictionStore(trained.registry).label(monitored.MODEL, labels).accepted == 4

    new = dataset_from_frame(monitored.loans(500, seed=1), "new")
    challenge = challenge_champion(trained, monitored.MODEL, new, with_feedback=True)
    assert challenge.feedback is not None
    assert challenge.feedback.joined == 120
    assert challenge.feedback.skipped == {SEVERAL_ROWS: 4}
    joined = challenge.feedback.frame
    assert list(joined.columns) == ["amount", "income", "plan", "late"]
    assert joined["plan"].tolist() == one["plan"].tolist()  # text as it was sent
    assert joined["amount"].to_numpy() == pytest.approx(one["amount"].to_numpy())
    stages = {stage.stage: stage for stage in challenge.result.stages}
    assert (stages["augment"].rows_in, stages["augment"].rows_out) == (120, 400 + 120)
    assert challenge.champion_scores.rows == 100  # the new data's own validation rows
    [compared] = challenge.compared
    assert compared.metric == "accuracy"
    assert compared.champion is not None
