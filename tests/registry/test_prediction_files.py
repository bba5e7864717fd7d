"""What the Parquet store does beyond the suite both stores pass
(``tests/registry/test_predictions.py``): rows held until a file's worth, files laid out
by model and day as any Parquet reader takes them, labels for rows not yet written, a
failed write counted, pruning by whole days."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.dataset as ds
import pytest

from servewell.bootstrap import Services, build_services
from servewell.registry.prediction_files import ParquetPredictionStore, RowsLost
from servewell.registry.predictions import PredictionRow
from servewell.settings import Settings


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    built = build_services(settings)
    yield built
    built.close()


def _row(request_id: str, days_ago: float = 0, model: str = "fraud") -> PredictionRow:
    at = (datetime.now(UTC) - timedelta(days=days_ago)).timestamp()
    return PredictionRow(at, request_id, model, 1, None, None, 2.0, False, '{"label": [1]}', None)


def test_rows_are_held_until_a_file_is_full_then_laid_out_by_model_and_day(
    services: Services, tmp_path: Path
) -> None:
    folder = tmp_path / "predictions"
    store = ParquetPredictionStore(services.registry, folder, file_rows=3, file_age_s=3600)
    store.write([_row("a"), _row("b")])
    assert store.rows("fraud") == []  # held: not a file's worth yet
    store.write([_row("c"), _row("old", 2), _row("x", model="other")])
    assert [row.request_id for row in store.rows("fraud")] == ["old", "a", "b", "c"]
    files = sorted(path.relative_to(folder).parent.as_posix() for path in folder.rglob("*"))
    today = datetime.now(UTC).date()
    assert {f"model=fraud/date={today.isoformat()}", "model=other"} <= set(files)
    table = ds.dataset(folder, format="parquet", partitioning="hive").to_table()
    assert sorted(table.column("request_id").to_pylist()) == ["a", "b", "c", "old", "x"]
    assert set(table.column("model").to_pylist()) == {"fraud", "other"}


def test_held_rows_take_labels_and_close_writes_them(services: Services, tmp_path: Path) -> None:
    folder = tmp_path / "predictions"
    store = ParquetPredictionStore(services.registry, folder, file_rows=100, file_age_s=3600)
    store.write([_row("held")])
    assert store.label("fraud", [("held", 1), ("nobody", 0)]).unknown == ["nobody"]
    store.close()
    [row] = ParquetPredictionStore(services.registry, folder).rows("fraud")
    assert (row.request_id, row.label) == ("held", 1)


def test_rows_held_past_the_age_are_written_at_the_next_write(
    services: Services, tmp_path: Path
) -> None:
    store = ParquetPredictionStore(
        services.registry, tmp_path / "p", file_rows=100, file_age_s=1e-9
    )
    store.write([_row("a")])
    assert [row.request_id for row in store.rows("fraud")] == ["a"]


def test_a_failed_write_says_how_many_rows_it_lost(services: Services, tmp_path: Path) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")
    store = ParquetPredictionStore(services.registry, blocked, file_rows=3, file_age_s=3600)
    store.write([_row("a"), _row("b")])
    with pytest.raises(RowsLost) as lost:
        store.write([_row("c")])
    assert lost.value.count == 3
    store.close()  # nothing is held any more


def test_prune_deletes_whole_days_and_old_labels(services: Services, tmp_path: Path) -> None:
    store = ParquetPredictionStore(services.registry, tmp_path / "p", file_rows=1)
    store.write([_row("old", 40), _row("older", 41), _row("new", 1)])
    assert store.prune(datetime.now(UTC) - timedelta(days=30)) == 2
    assert [row.request_id for row in store.rows("fraud")] == ["new"]
    assert not list((tmp_path / "p" / "model=fraud").glob("date=*/*.partial"))
