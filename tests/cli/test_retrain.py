"""``servewell retrain``: the recorded configuration on new data, the challenger judged
against the champion on the same validation rows, registered only when it holds its own;
logged predictions with feedback labels joined when asked. Real training, a real
registry on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import Result

import monitored_models as monitored
from servewell.bootstrap import Services, build_services
from servewell.core.ref import ModelRef
from servewell.registry.predictions import PredictionRow, SqlPredictionStore
from servewell.settings import Settings
from servewell.training.data import dataset_from_frame
from servewell.training.run import run_pipeline
from training_tables import fast_config

Invoke = Callable[..., Result]
MODEL = monitored.MODEL


@pytest.fixture
def registry(home: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Services]:
    """The registry the commands use (SQLite, then PostgreSQL)."""
    monkeypatch.setenv("SERVEWELL_DATABASE_URL", database_url)
    services = build_services(Settings(home=home, database_url=database_url))
    yield services
    services.close()


def train_champion(services: Services, frame: pd.DataFrame, **overrides: object) -> None:
    """``loans`` trained by the pipeline on ``frame`` (unstratified: the test knows the
    split), with production pointing at it."""
    config = fast_config(
        name=MODEL,
        target="late",
        estimator={"kind": "logistic"},
        split={"stratify": False},
        register={"alias": "production"},
        **overrides,
    )
    run_pipeline(dataset_from_frame(frame, MODEL), config, services)


def shuffled(frame: pd.DataFrame, rows: np.ndarray | None = None, seed: int = 3) -> pd.DataFrame:
    """``frame`` with the labels of ``rows`` (default: all) shuffled among them."""
    rows = np.arange(len(frame)) if rows is None else rows
    rng = np.random.default_rng(seed)
    copy = frame.copy()
    copy.loc[rows, "late"] = rng.permutation(copy.loc[rows, "late"].to_numpy())
    return copy


def training_rows(rows: int) -> np.ndarray:
    """The rows the pipeline's unstratified split (20 %, seed 42) trains on."""
    from sklearn.model_selection import train_test_split

    train, _ = train_test_split(np.arange(rows), test_size=0.2, random_state=42)
    return np.sort(train)


def write(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path


def versions(services: Services) -> list[int]:
    return [v.version for v in services.registry.list_versions(MODEL)]


def test_a_better_challenger_is_registered(
    invoke: Invoke, registry: Services, tmp_path: Path
) -> None:
    train_champion(registry, shuffled(monitored.loans(600, seed=0)))  # learnt nothing
    data = write(monitored.loans(1000, seed=1), tmp_path / "new.csv")
    result = invoke("retrain", MODEL, "--data", str(data), "--report", str(tmp_path / "rep"))
    assert result.exit_code == 0, result.output
    assert versions(registry) == [1, 2]
    challenger = registry.registry.resolve(ModelRef.parse(MODEL))
    assert challenger.version == 2  # the recorded alias moved with it
    challenge = challenger.params["challenge"]
    assert (challenge["champion"], challenge["won"], challenge["rows"]) == ("loans@1", True, 200)
    [compared] = challenge["compared"]
    assert compared["metric"] == "accuracy"
    assert compared["challenger"] > compared["champion"] + 0.2
    assert challenger.params["pipeline"]["split"]["stratify"] is False  # the recorded one
    assert "champion loans@1" in result.stdout
    assert "registered loans@2" in result.stdout
    html = (tmp_path / "rep" / "report.html").read_text()
    assert "Challenger against champion" in html
    assert "loans@1" in html
    attached = challenger.artifact("report.html")
    kept = registry.artifacts.fetch(attached.uri, attached.sha256).read_text()
    assert "Challenger against champion" in kept  # the version's own report shows both


def test_a_worse_challenger_exits_5_and_registers_nothing(
    invoke: Invoke, registry: Services, tmp_path: Path
) -> None:
    train_champion(registry, monitored.loans(1000, seed=0))
    new = monitored.loans(1000, seed=1)
    # The challenger learns from shuffled labels; the rows both are judged on keep theirs.
    data = write(shuffled(new, training_rows(len(new))), tmp_path / "new.csv")
    result = invoke("retrain", MODEL, "--data", str(data), "--json")
    assert result.exit_code == 5, result.output
    assert "the challenger lost to loans@1, nothing registered: accuracy" in result.stderr
    assert versions(registry) == [1]
    report = json.loads(result.stdout)
    assert report["version"] is None
    challenge = report["challenge"]
    assert challenge["won"] is False
    metrics = challenge["metrics"]
    assert metrics["champion"]["accuracy"] > metrics["challenger"]["accuracy"] + 0.1
    # A margin wider than the gap lets the same challenger in.
    gap = metrics["champion"]["accuracy"] - metrics["challenger"]["accuracy"]
    lenient = invoke("retrain", MODEL, "--data", str(data), "--margin", str(gap + 0.01))
    assert lenient.exit_code == 0, lenient.output
    assert versions(registry) == [1, 2]


def test_the_gate_metrics_are_compared(invoke: Invoke, registry: Services, tmp_path: Path) -> None:
    gate = {"min_accuracy": 0.5, "min_recall": {"1": 0.3}, "max_p99_ms": 10_000}
    train_champion(registry, shuffled(monitored.loans(600, seed=0)), gate={})
    train_champion(registry, monitored.loans(600, seed=0), gate=gate)
    data = write(monitored.loans(800, seed=2), tmp_path / "new.csv")
    result = invoke("retrain", MODEL, "--data", str(data), "--json")
    assert result.exit_code == 0, result.output
    compared = json.loads(result.stdout)["challenge"]["compared"]
    assert [c["criterion"] for c in compared] == ["min_accuracy", "min_recall[1]"]
    assert all(c["champion"] is not None and c["challenger"] is not None for c in compared)


def logged_row(i: int, inputs: dict[str, list[object]], cached: bool = False) -> PredictionRow:
    now = datetime.now(UTC).timestamp()
    outputs = json.dumps({"label": [0], "probabilities": [[0.5, 0.5]]})
    return PredictionRow(
        now - 1000 + i, f"f{i}", MODEL, 1, None, None, 1.0, cached, outputs, json.dumps(inputs)
    )


def log_with_feedback(services: Services, frame: pd.DataFrame) -> None:
    """Each row of ``frame`` logged as a one-row request and labelled, through the real
    store; and a few that cannot be learnt from: a three-row request, a cache hit, an
    unlabelled one."""
    rows = [
        logged_row(i, {"amount": [a], "income": [b], "plan": [p]})
        for i, (a, b, p, _) in enumerate(frame.itertuples(index=False))
    ]
    rows.append(logged_row(9001, {"amount": [1, 2, 3], "income": [1, 2, 3], "plan": ["a"] * 3}))
    rows.append(logged_row(9002, {}, cached=True))
    rows.append(logged_row(9003, {"amount": [1.0], "income": [0.5], "plan": ["basic"]}))
    store = SqlPredictionStore(services.registry)
    store.write(rows)
    labels = [(f"f{i}", int(late)) for i, late in enumerate(frame["late"])]
    store.label(MODEL, [*labels, ("f9001", 1), ("f9002", 0)])


def test_with_feedback_joins_the_labelled_rows_logged_in_full(
    invoke: Invoke, registry: Services, tmp_path: Path
) -> None:
    (tmp_path / "servewell.yaml").write_text(
        f"models: {{{MODEL}: {{monitoring: {{log_inputs: full}}}}}}\n"
    )
    train_champion(registry, shuffled(monitored.loans(600, seed=0)))
    log_with_feedback(registry, monitored.loans(150, seed=7))
    data = write(monitored.loans(500, seed=1), tmp_path / "new.csv")
    result = invoke("retrain", MODEL, "--data", str(data), "--with-feedback", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    feedback = report["challenge"]["feedback"]
    assert feedback["joined"] == 150
    assert feedback["skipped"] == {
        "several rows in one request (a label names one)": 1,
        "a response-cache hit (no inputs logged)": 1,
    }
    stages = {stage["stage"]: stage for stage in report["stages"]}
    assert stages["augment"]["rows_in"] == 150
    assert stages["augment"]["rows_out"] == 400 + 150  # the data's 400 training rows, and 150
    assert stages["validate"]["rows_in"] == 100  # the holdout is the data's own
    assert report["challenge"]["rows"] == 100


def test_with_feedback_skips_inputs_logged_as_hashes(
    invoke: Invoke, registry: Services, tmp_path: Path
) -> None:
    train_champion(registry, shuffled(monitored.loans(600, seed=0)))
    log_with_feedback(registry, monitored.loans(20, seed=7))
    data = write(monitored.loans(500, seed=1), tmp_path / "new.csv")
    result = invoke("retrain", MODEL, "--data", str(data), "--with-feedback", "--json")
    assert result.exit_code == 0, result.output
    feedback = json.loads(result.stdout)["challenge"]["feedback"]
    assert feedback["joined"] == 0
    [(reason, count)] = feedback["skipped"].items()
    assert count == 22  # every labelled row: 'plan' is text, hashed unless set to full
    assert "'plan' is logged as 'hash'" in reason
    assert "models.loans.monitoring.log_inputs" in reason


def test_refusals(invoke: Invoke, registry: Services, tmp_path: Path) -> None:
    from serving_models import register_adder

    data = write(monitored.loans(200, seed=1), tmp_path / "new.csv")
    unknown = invoke("retrain", "nobody", "--data", str(data))
    assert unknown.exit_code == 4, unknown.output
    register_adder(registry, tmp_path)
    untrained = invoke("retrain", "adder", "--data", str(data))
    assert untrained.exit_code == 2
    assert "it has no recorded training configuration; retrain needs one" in untrained.stderr
    assert len(untrained.stderr.strip().splitlines()) == 1
    train_champion(registry, monitored.loans(300, seed=0))
    lacking = write(monitored.loans(200, seed=1).drop(columns=["late"]), tmp_path / "x.csv")
    no_target = invoke("retrain", MODEL, "--data", str(lacking))
    assert no_target.exit_code == 2
    assert "late" in no_target.stderr
    one_column = write(monitored.loans(200, seed=1)[["amount"]], tmp_path / "amount.csv")
    only_an_input = invoke("retrain", MODEL, "--data", str(one_column))
    assert only_an_input.exit_code == 2  # read as a table: what it lacks is named
    assert "no target column 'late'" in only_an_input.stderr, only_an_input.stderr
    negative = invoke("retrain", MODEL, "--data", str(data), "--margin", "-1")
    assert negative.exit_code == 2
    three = monitored.loans(300, seed=1)
    three.loc[:40, "late"] = 2  # a class the champion never saw
    new_class = invoke("retrain", MODEL, "--data", str(write(three, tmp_path / "c.csv")))
    assert new_class.exit_code == 2, new_class.output
    assert "class(es) 2 that the champion loans@1 does not know" in new_class.stderr
    assert versions(registry) == [1]


def test_a_regressor_retrained_on_its_own_data_ties_and_a_tie_holds(
    invoke: Invoke, registry: Services, tmp_path: Path
) -> None:
    from sklearn.datasets import load_diabetes

    frame = load_diabetes(as_frame=True).frame  # shipped with scikit-learn
    config = fast_config(name="sugar", target="target", estimator={"kind": "random_forest"})
    run_pipeline(dataset_from_frame(frame, "sugar"), config, registry)
    data = write(frame, tmp_path / "same.csv")
    result = invoke("retrain", "sugar", "--data", str(data), "--json")
    assert result.exit_code == 0, result.output
    [compared] = json.loads(result.stdout)["challenge"]["compared"]
    assert compared["metric"] == "r2"  # a regressor's headline metric, with no gate
    assert compared["challenger"] == pytest.approx(compared["champion"], abs=1e-6)
    assert [v.version for v in registry.registry.list_versions("sugar")] == [1, 2]
