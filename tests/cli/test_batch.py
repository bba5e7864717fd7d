"""``servewell batch``: a file scored locally, chunk by chunk, equals ``predict`` row for
row; bad rows get the server's message and the others go on."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import Result

from servewell.jobs.tables import is_number

Invoke = Callable[..., Result]


@pytest.fixture
def table(tmp_path: Path) -> Path:
    """The breast-cancer rows with a key column, one row with a missing value and one
    out of any sane range of types (text where a number belongs)."""
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame.drop(columns="target").head(230)
    frame.insert(0, "key", [f"k{i}" for i in range(len(frame))])
    frame = frame.astype({"mean radius": object})
    frame.loc[3, "mean radius"] = None
    frame.loc[150, "mean radius"] = "big"
    path = tmp_path / "rows.csv"
    frame.to_csv(path, index=False)
    return path


def test_batch_equals_predict_row_for_row(
    demo: Result, invoke: Invoke, table: Path, tmp_path: Path
) -> None:
    out = tmp_path / "scored.csv"
    result = invoke(
        "batch", "breast-cancer", str(table), "-o", str(out), "--id-column", "key",
        "--chunk-rows", "50",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "rows with an error" in result.stdout
    scored = _csv(out)
    rows = _csv(table)
    assert [row["key"] for row in scored] == [row["key"] for row in rows]  # each once, in order
    good = [i for i in range(len(rows)) if i not in (3, 150)]
    expected = _predict(invoke, tmp_path, [rows[i] for i in good])
    for index, want in zip(good, expected, strict=True):
        got = scored[index]
        assert got["error"] == ""
        assert float(got["prediction"]) == want["label"]
        assert json.loads(got["probabilities"]) == pytest.approx(want["probabilities"])
    for index in (3, 150):
        assert scored[index]["prediction"] == ""
        assert scored[index]["error"] == _predict_error(invoke, tmp_path, rows[index])


def test_batch_reads_and_writes_every_format(
    demo: Result, invoke: Invoke, table: Path, tmp_path: Path
) -> None:
    import pandas as pd

    frame = pd.read_csv(table)
    frame["mean radius"] = pd.to_numeric(frame["mean radius"], errors="coerce")
    frame.to_json(tmp_path / "rows.jsonl", orient="records", lines=True)
    frame.to_parquet(tmp_path / "rows.parquet")
    outputs = []
    for source, target in (("rows.jsonl", "a.parquet"), ("rows.parquet", "b.jsonl")):
        result = invoke(
            "batch", "breast-cancer", str(tmp_path / source), "-o", str(tmp_path / target),
            "--chunk-rows", "64",
        )  # fmt: skip
        assert result.exit_code == 0, result.output
    outputs.append(pd.read_parquet(tmp_path / "a.parquet"))
    outputs.append(pd.read_json(tmp_path / "b.jsonl", lines=True))
    for scored in outputs:
        assert list(scored.columns) == ["row", "prediction", "probabilities", "error"]
        assert list(scored["row"]) == list(range(len(frame)))  # the row number, once each
        assert scored["error"].notna().sum() == 2  # NaN is refused, like the server does
    assert list(outputs[0]["prediction"].fillna(-1)) == list(outputs[1]["prediction"].fillna(-1))


def test_batch_bad_input_exit_codes(
    demo: Result, invoke: Invoke, table: Path, tmp_path: Path
) -> None:
    out = str(tmp_path / "x.csv")
    missing = invoke("batch", "no-such-model", str(table), "-o", out)
    assert missing.exit_code == 4
    assert "not registered" in missing.stderr
    text = tmp_path / "rows.txt"
    text.write_text("a,b\n")
    unknown = invoke("batch", "breast-cancer", str(text), "-o", out)
    assert unknown.exit_code == 2
    assert "cannot tell the format" in unknown.stderr
    not_parquet = invoke("batch", "breast-cancer", str(table), "--format", "parquet", "-o", out)
    assert not_parquet.exit_code == 2
    assert "is not a Parquet file" in not_parquet.stderr
    no_id = invoke("batch", "breast-cancer", str(table), "--id-column", "nope", "-o", out)
    assert no_id.exit_code == 2
    assert "no column 'nope'" in no_id.stderr
    assert not Path(out).exists()  # nothing half-written


def _predict(invoke: Invoke, tmp_path: Path, rows: list[dict[str, str]]) -> list[dict[str, object]]:
    path = tmp_path / "for_predict.csv"
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    result = invoke("predict", "breast-cancer", str(path), "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["predictions"]  # type: ignore[no-any-return]


def _predict_error(invoke: Invoke, tmp_path: Path, row: dict[str, str]) -> str:
    path = tmp_path / "one.json"
    values = {k: (float(v) if is_number(v) else (v or None)) for k, v in row.items() if k != "key"}
    path.write_text(json.dumps([values]))
    result = invoke("predict", "breast-cancer", str(path))
    assert result.exit_code == 2
    return result.stderr.strip().removeprefix("error: ")


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))
