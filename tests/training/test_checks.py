"""The reviewer's checks fire on data built to trigger them and stay quiet on clean data."""

import numpy as np

from servewell.training.data import dataset_from_frame
from servewell.training.run import train_pipeline


def _statuses(result) -> dict[str, str]:
    return {check.name: check.status for check in result.checks}


def test_clean_data_passes_every_check(frame, make_config) -> None:
    result = train_pipeline(dataset_from_frame(frame, "t"), make_config())
    statuses = _statuses(result)
    assert statuses["leakage"] == "pass"
    assert statuses["imbalance"] == "pass"
    assert statuses["overfitting"] == "pass"
    latency = next(c for c in result.checks if c.name == "latency")
    assert latency.figures["p99_ms"] >= latency.figures["p50_ms"] > 0
    assert latency.figures["size_bytes"] > 0


def test_a_copy_of_the_target_is_flagged_as_leakage(frame, make_config) -> None:
    frame["outcome_logged"] = np.where(frame["clicked"] == 1, "yes", "no")
    result = train_pipeline(dataset_from_frame(frame, "t"), make_config())
    leakage = next(c for c in result.checks if c.name == "leakage")
    assert leakage.status == "warn"
    assert "'outcome_logged' alone predicts the target" in leakage.message


def test_rows_shared_by_training_and_validation_are_flagged(frame, make_config) -> None:
    repeated = frame.sample(200, replace=True, random_state=0)
    config = make_config(cleaning={"duplicates": "keep"})
    result = train_pipeline(dataset_from_frame(repeated, "t"), config)
    leakage = next(c for c in result.checks if c.name == "leakage")
    assert leakage.status == "warn"
    assert leakage.figures["overlap_rows"] > 0


def test_accuracy_paradox_on_a_rare_class(frame, make_config) -> None:
    rng = np.random.default_rng(3)
    frame["clicked"] = (rng.random(len(frame)) < 0.06).astype(int)  # noise, 6% positive
    result = train_pipeline(dataset_from_frame(frame, "t"), make_config())
    imbalance = next(c for c in result.checks if c.name == "imbalance")
    assert imbalance.status == "warn"
    assert imbalance.figures["baseline"] > 0.9
    assert "recall of class '1'" in imbalance.message
