"""``servewell predictions`` and ``servewell feedback`` on a registry holding logged
predictions (written by the prediction log's own store, as a server's flusher does), on
each store (the registry database, Parquet files) as ``monitoring.store`` names it."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import Result

from peak_memory import BOUNDED_RSS_BYTES, run_measured, sparse_file
from servewell.bootstrap import build_services
from servewell.registry.prediction_store import PredictionStore, open_prediction_store
from servewell.registry.predictions import PredictionRow
from servewell.settings import Settings
from serving_models import register_python

Invoke = Callable[..., Result]


def _row(request_id: str, minutes_ago: float, value: float) -> PredictionRow:
    at = (datetime.now(UTC) - timedelta(minutes=minutes_ago)).timestamp()
    outputs, inputs = json.dumps({"label": [value]}), json.dumps({"x": [[value, 2.0]]})
    return PredictionRow(at, request_id, "clicks", 2, None, "web", 1.5, False, outputs, inputs)


@pytest.fixture(params=["database", "parquet"])
def logged(
    request: pytest.FixtureRequest, home: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[PredictionStore]:
    monkeypatch.setenv("SERVEWELL_MONITORING__STORE", request.param)  # for the commands
    services = build_services(Settings(home=home))
    register_python(services, "clicks", "sum", signature="sum.json")
    store = open_prediction_store(services)
    store.write([_row("old", 180, 0), _row("a", 30, 1), _row("b", 5, 0), _row("c", 1, 1)])
    store.close()
    yield store
    services.close()


def test_predictions_exports_json_and_csv_since(invoke: Invoke, logged: PredictionStore) -> None:
    rows = json.loads(invoke("predictions", "clicks", "--since", "1h", "--json").stdout)
    assert [row["request_id"] for row in rows] == ["a", "b", "c"]
    assert rows[0]["outputs"] == {"label": [1]}
    assert rows[0]["inputs"] == {"x": [[1, 2.0]]}
    assert rows[0]["key_name"] == "web"
    assert rows[0]["label"] is None
    exported = list(csv.DictReader(io.StringIO(invoke("predictions", "clicks", "--csv").stdout)))
    assert [row["request_id"] for row in exported] == ["a", "b", "c"]
    assert json.loads(exported[1]["outputs"]) == {"label": [0]}
    assert exported[1]["label"] == ""
    assert exported[1]["cached"] == "False"
    every = json.loads(invoke("predictions", "clicks", "--since", "1d", "--json").stdout)
    assert len(every) == 4
    table = invoke("predictions", "clicks")
    assert table.exit_code == 0
    assert "3 prediction(s)" in table.stdout


def test_feedback_from_csv_joins_relabels_and_reports_unknown_ids(
    invoke: Invoke, logged: PredictionStore, tmp_path: Path
) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_text("rid,clicked,other\na,0,x\nb,1,y\nnobody,1,z\n")
    args = ("--id-column", "rid", "--label-column", "clicked")
    first = invoke("feedback", "clicks", str(labels), *args, "--json")
    assert json.loads(first.stdout) == {"accepted": 2, "unknown": ["nobody"], "unknown_count": 1}
    labels.write_text("rid,clicked\na,1\n")
    again = invoke("feedback", "clicks", str(labels), *args)
    assert again.exit_code == 0
    assert "accepted 1" in again.stdout
    rows = json.loads(invoke("predictions", "clicks", "--json").stdout)
    assert [(row["request_id"], row["label"]) for row in rows] == [("a", 1), ("b", 1), ("c", None)]


@pytest.mark.parametrize("command", ["predictions", "feedback"])
def test_a_model_the_registry_does_not_know_is_exit_4(
    invoke: Invoke, logged: PredictionStore, tmp_path: Path, command: str
) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_text("request_id,label\na,1\n")
    args = (str(labels),) if command == "feedback" else ()
    result = invoke(command, "clikcs", *args)
    assert result.exit_code == 4, result.output
    assert "clikcs" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_feedback_names_a_missing_column(
    invoke: Invoke, logged: PredictionStore, tmp_path: Path
) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_text("request_id,label\na,1\n")
    result = invoke("feedback", "clicks", str(labels), "--label-column", "clicked")
    assert result.exit_code != 0
    assert "no column 'clicked'" in result.stderr
    assert "request_id, label" in result.stderr


def test_predictions_refuses_a_since_without_a_unit(invoke: Invoke, home: Path) -> None:
    result = invoke("predictions", "clicks", "--since", "10")
    assert result.exit_code == 2
    assert "--since" in result.stderr


def test_feedback_reads_a_bom_and_refuses_a_missing_label_cell(
    invoke: Invoke, logged: PredictionStore, tmp_path: Path
) -> None:
    labels = tmp_path / "labels.csv"
    args = ("--id-column", "request_id", "--label-column", "clicked")
    labels.write_bytes(b"\xef\xbb\xbfrequest_id,clicked\na,0\n")  # as Excel saves CSV
    assert json.loads(invoke("feedback", "clicks", str(labels), *args, "--json").stdout) == {
        "accepted": 1,
        "unknown": [],
        "unknown_count": 0,
    }
    for body in ("request_id,clicked\nb,1\nc\n", "request_id,clicked\nb,1\nc,\n"):
        labels.write_text(body)
        result = invoke("feedback", "clicks", str(labels), *args)
        assert result.exit_code == 2, result.output
        assert "line 3 has no value in 'clicked'" in result.stderr
    rows = json.loads(invoke("predictions", "clicks", "--json").stdout)
    assert [(row["request_id"], row["label"]) for row in rows] == [
        ("a", 0),
        ("b", None),
        ("c", None),
    ]


@pytest.mark.parametrize("since", ["99999999999d", "9" * 400 + "s"])
def test_a_since_past_any_date_is_one_line(invoke: Invoke, home: Path, since: str) -> None:
    result = invoke("predictions", "clicks", "--since", since)
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1
    assert "--since" in result.stderr


def test_feedback_refuses_a_gigabyte_of_nul_bytes_in_bounded_memory(
    home: Path, tmp_path: Path
) -> None:
    big = sparse_file(tmp_path / "big.csv")
    run = run_measured(
        "from servewell.cli.app import main; main()", "feedback", "m", str(big), cwd=tmp_path
    )
    assert run.exit_code == 2, run.stderr
    assert run.stderr.strip() == "error: big.csv is not a CSV file (it holds binary data)"
    assert run.peak_rss_bytes < BOUNDED_RSS_BYTES


def test_feedback_refuses_an_endless_line_before_reading_it(
    invoke: Invoke, logged: PredictionStore, tmp_path: Path
) -> None:
    from servewell.training.textfile import MAX_LINE_CHARS

    labels = tmp_path / "labels.csv"
    labels.write_text("request_id,label\na,1\n" + "b" * (MAX_LINE_CHARS + 1))
    result = invoke("feedback", "clicks", str(labels))
    assert result.exit_code == 2
    assert "labels.csv: line 3 is longer than" in result.stderr
    rows = json.loads(invoke("predictions", "clicks", "--json").stdout)
    assert all(row["label"] is None for row in rows)  # nothing stored from a refused file


def test_feedback_sends_a_long_file_in_batches(
    invoke: Invoke, logged: PredictionStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from servewell.cli import predictions

    monkeypatch.setattr(predictions, "LABEL_BATCH", 2)
    labels = tmp_path / "labels.csv"
    labels.write_text("request_id,label\na,1\nx,0\nb,0\ny,1\nc,1\n")
    result = invoke("feedback", "clicks", str(labels), "--json")
    assert json.loads(result.stdout) == {"accepted": 3, "unknown": ["x", "y"], "unknown_count": 2}
    rows = json.loads(invoke("predictions", "clicks", "--json").stdout)
    assert [(row["request_id"], row["label"]) for row in rows] == [("a", 1), ("b", 0), ("c", 1)]
