"""``predict`` and ``evaluate`` on a trained pipeline that imputes (palmerpenguins, with
its missing values): an empty CSV cell is a missing value, columns the model does not
take (the target, an identifier) are left out with a note (``--strict`` refuses them),
and ``evaluate`` scores every row with the registered (served) model's figures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from servewell.bootstrap import build_services
from servewell.core.ref import ModelRef
from servewell.settings import Settings
from servewell.training.data import dataset_from_frame
from servewell.training.run import run_pipeline
from training_tables import penguins, penguins_config


@pytest.fixture
def trained(home: Path):
    services = build_services(Settings(home=home))
    try:
        result = run_pipeline(
            dataset_from_frame(penguins(), "penguins"), penguins_config(), services
        )
        version = services.registry.resolve(ModelRef.parse("penguins"))
    finally:
        services.close()
    return result, version


def test_predict_reads_empty_cells_as_missing_and_leaves_out_other_columns(
    trained, invoke, tmp_path: Path
) -> None:
    result, _ = trained
    frame = penguins().head(12).assign(rowid=range(12))  # rows 3 and 8-11 lack values
    path = tmp_path / "rows.csv"
    frame.to_csv(path, index=False)
    answer = invoke("predict", "penguins", str(path), "--json")
    assert answer.exit_code == 0, answer.output
    assert "left out column(s) the model does not take: species, rowid" in answer.stderr
    predictions = json.loads(answer.stdout)["predictions"]
    served = [list(row["probabilities"].values()) for row in predictions]
    local = result.model.predict_proba(frame.drop(columns=["species", "rowid"]))
    np.testing.assert_allclose(served, local, atol=1e-5)

    strict = invoke("predict", "penguins", str(path), "--strict")
    assert strict.exit_code == 2
    assert "the model does not take column(s) species, rowid (--strict)" in strict.stderr


def test_evaluate_scores_every_row_with_the_registered_figures(
    trained, invoke, tmp_path: Path
) -> None:
    result, version = trained
    path = tmp_path / "validation.csv"
    result.validation_frame.to_csv(path, index=False)
    answer = invoke("evaluate", "penguins", str(path), "--target", "species", "--json")
    assert answer.exit_code == 0, answer.output
    scored = json.loads(answer.stdout)[f"penguins@{version.version}"]
    for metric in ("accuracy", "macro_f1", "log_loss"):
        assert scored["metrics"][metric] == pytest.approx(version.metrics[metric])

    every = tmp_path / "penguins.csv"
    penguins().to_csv(every, index=False)  # 11 rows without a sex, 2 without measurements
    answer = invoke("evaluate", "penguins", str(every), "--target", "species", "--json")
    assert answer.exit_code == 0, answer.output
    scored = json.loads(answer.stdout)[f"penguins@{version.version}"]
    assert (scored["rows"], scored["dropped"]) == (344, {})
