"""The prediction log as Parquet files in the artifact store (``monitoring.store:
parquet``), for volume: a server writes each model's rows column by column, compressed,
without the database's per-row index upkeep; labels stay in the registry database
(``registry/feedback.py``) and are joined by request id when the files are read.

Layout, partitioned as Hive does (so DuckDB, Spark or pyarrow read it as a table)::

    <artifacts>/predictions/model=<name>/date=<YYYY-MM-DD>/<first ms>-<pid>-<n>.parquet

The writer thread holds rows until ``monitoring.parquet_file_rows`` of them or
``monitoring.parquet_file_age_s`` has passed, then writes one file per model and day
(a new name each time, written beside it and renamed: a reader never sees half a file,
and two processes never write the same file). Rows are readable once their file is
written; shutdown writes what is held. Retention prunes whole days: a day's folder goes
once all of it is older than ``monitoring.retention_days``.
"""

from __future__ import annotations

import itertools
import os
import shutil
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from servewell.registry.feedback import (
    PRUNE_ROWS,
    FeedbackResult,
    labels_for,
    prune_labels,
    store_labels,
)
from servewell.registry.predictions import SCAN_ROWS, LoggedPrediction, PredictionRow, to_prediction
from servewell.registry.sql import SqlRegistry

#: The artifact store's folder of prediction files.
PREDICTIONS_FOLDER = "predictions"
_COLUMNS = (
    ("logged_at", "float64"),
    ("request_id", "string"),
    ("model", "string"),
    ("version", "int32"),
    ("arm", "string"),
    ("key_name", "string"),
    ("latency_ms", "float64"),
    ("cached", "bool_"),
    ("outputs", "string"),
    ("inputs", "string"),
)
_DAY_S = 86400
_INSTALL_HINT = "monitoring.store: parquet needs pyarrow: pip install 'servewell[parquet]'"


class RowsLost(Exception):
    """Writing files failed: ``count`` rows (held from earlier writes too) are lost."""

    def __init__(self, count: int) -> None:
        super().__init__(f"{count} logged predictions could not be written")
        self.count = count


class ParquetPredictionStore:
    """Write, read, label and prune the prediction log as Parquet files."""

    def __init__(
        self,
        registry: SqlRegistry,
        folder: Path,
        *,
        file_rows: int = 100_000,
        file_age_s: float = 60.0,
    ) -> None:
        self.registry = registry
        self.folder = folder
        self.file_rows = file_rows
        self.file_age_s = file_age_s
        self._held: dict[tuple[str, int], list[Any]] = {}
        """Arrow tables of the rows held, by model and day (columns, not Python objects:
        nothing for the garbage collector to walk while they wait)."""
        self._held_rows = 0
        self._held_since = 0.0
        self._names = itertools.count()

    # --- writing (the log's flush thread) ---------------------------------------------------

    def write(self, rows: Sequence[PredictionRow]) -> None:
        """Hold ``rows``; write the files once enough are held, or for long enough."""
        if rows:
            if not self._held_rows:
                self._held_since = time.monotonic()
            groups: dict[tuple[str, int], list[PredictionRow]] = defaultdict(list)
            for row in rows:
                groups[(row.model, int(row.at // _DAY_S))].append(row)
            for key, group in groups.items():
                self._held.setdefault(key, []).append(_to_table(group))
            self._held_rows += len(rows)
        held_s = time.monotonic() - self._held_since
        if self._held_rows >= self.file_rows or (self._held_rows and held_s >= self.file_age_s):
            self.close()

    def close(self) -> None:
        """Write every row held, one file per model and day."""
        pa, _, _ = _pyarrow()
        held, lost = self._held, self._held_rows
        self._held, self._held_rows = {}, 0
        try:
            for (model, day), tables in held.items():
                folder = self.folder / f"model={model}" / f"date={_day_of(day * _DAY_S)}"
                table = pa.concat_tables(tables)
                self._write_file(folder, table)
                lost -= table.num_rows
        except Exception as exc:
            raise RowsLost(lost) from exc

    def _write_file(self, folder: Path, table: Any) -> None:
        _, pq, _ = _pyarrow()
        folder.mkdir(parents=True, exist_ok=True)
        first_ms = int(table.column("logged_at")[0].as_py() * 1000)
        name = f"{first_ms}-{os.getpid()}-{next(self._names)}.parquet"
        partial = folder / f"{name}.partial"
        pq.write_table(table, partial, compression="zstd")
        partial.replace(folder / name)

    # --- reading ---------------------------------------------------------------------------

    def rows(
        self, model: str, since: datetime | None = None, limit: int | None = None
    ) -> list[LoggedPrediction]:
        """``model``'s predictions since ``since``, oldest first (the newest ``limit``
        when given), each with its label."""
        return [row for page in self.scan(model, since=since, newest=limit) for row in page]

    def labelled(
        self, model: str, since: datetime, *, version: int | None = None
    ) -> Iterator[list[LoggedPrediction]]:
        """``model``'s labelled predictions since ``since``: the window's files read, its
        labelled rows kept (the files have no index by request id, unlike the table)."""
        for page in self.scan(model, since=since, version=version):
            found = [row for row in page if row.label is not None]
            if found:
                yield found

    def scan(
        self,
        model: str,
        *,
        since: datetime | None = None,
        version: int | None = None,
        newest: int | None = None,
        page_rows: int = SCAN_ROWS,
    ) -> Iterator[list[LoggedPrediction]]:
        """``model``'s predictions (``version``'s alone when given) since ``since``, or
        its ``newest`` ones, oldest first with their labels, a page of ``page_rows`` at a
        time; one day's files are read at once (only the rows the window takes)."""
        start = None if since is None else since.timestamp()
        skip = 0
        if newest is not None:
            found = self._nth_newest(model, start, version, newest)
            if found is not None:
                start, skip = found
        for page in _pages(self._tables(model, start, version, skip), page_rows):
            yield self._with_labels(model, page)

    def _tables(self, model: str, start: float | None, version: int | None, skip: int) -> Any:
        """Each day's rows from ``start`` on, by time, less the first ``skip`` rows."""
        for day in self._days(model, start):
            table = self._read(day, start, version)
            if skip:
                dropped = min(skip, table.num_rows)
                table, skip = table.slice(dropped), skip - dropped
            yield table

    def _days(self, model: str, start: float | None) -> list[list[Path]]:
        """The files of each day from ``start``'s on, oldest day first."""
        first = None if start is None else f"date={_day_of(start)}"
        days = sorted((self.folder / f"model={model}").glob("date=*"))
        found = [
            sorted(day.glob("*.parquet")) for day in days if first is None or day.name >= first
        ]
        return [files for files in found if files]

    def _read(self, files: list[Path], start: float | None, version: int | None) -> Any:
        """The rows of ``files`` from ``start`` on (``version``'s alone), by time."""
        pa, _, ds = _pyarrow()
        where = None
        if start is not None:
            where = ds.field("logged_at") >= start
        if version is not None:
            of_version = ds.field("version") == version
            where = of_version if where is None else where & of_version
        table = ds.dataset(files, schema=_schema(pa), format="parquet").to_table(filter=where)
        return table.sort_by("logged_at")

    def _nth_newest(
        self, model: str, start: float | None, version: int | None, n: int
    ) -> tuple[float, int] | None:
        """The time of the ``n``-th newest row, and how many rows at or after it to skip
        (rows logged at the very same time); None: fewer rows than ``n``."""
        import numpy as np

        times = [
            self._read(day, start, version).column("logged_at").to_numpy()
            for day in self._days(model, start)
        ]
        every = np.concatenate(times) if times else np.empty(0)
        if len(every) < n:
            return None
        nth = float(np.partition(every, len(every) - n)[len(every) - n])
        return nth, int((every >= nth).sum()) - n

    def _with_labels(self, model: str, table: Any) -> list[LoggedPrediction]:
        columns = [table.column(name).to_pylist() for name, _ in _COLUMNS]
        labels = labels_for(self.registry, model, columns[1])
        return [
            to_prediction(row, *labels.get(row[1], (None, None)))
            for row in zip(*columns, strict=True)
        ]

    # --- labels and pruning ----------------------------------------------------------------

    def label(self, model: str, labels: Sequence[tuple[str, Any]]) -> FeedbackResult:
        """Store each ``(request_id, label)`` whose id ``model`` logged (in a written
        file, or held to be written by this process); count the others."""
        return store_labels(self.registry, model, labels, lambda ids: self._logged_ids(model, ids))

    def _logged_ids(self, model: str, request_ids: list[str]) -> set[str]:
        pa, _, ds = _pyarrow()
        which = ds.field("request_id").isin(pa.array(request_ids, pa.string()))
        known: set[str] = set()
        for (held_model, _), tables in list(self._held.items()):
            if held_model == model:
                for table in list(tables):
                    known.update(table.filter(which).column("request_id").to_pylist())
        for files in self._days(model, None):
            dataset = ds.dataset(files, schema=_schema(pa), format="parquet")
            known.update(dataset.to_table(columns=["request_id"], filter=which)[0].to_pylist())
        return known

    def prune(self, before: datetime, batch_rows: int = PRUNE_ROWS) -> int:
        """Delete the days of predictions logged wholly before ``before`` (a day's folder
        at a time), and labels received before it; how many predictions went."""
        _, pq, _ = _pyarrow()
        last_gone = f"date={_day_of(before.timestamp())}"
        gone = 0
        for day in sorted(self.folder.glob("model=*/date=*")):
            if day.name < last_gone:
                gone += sum(pq.read_metadata(file).num_rows for file in day.glob("*.parquet"))
                shutil.rmtree(day, ignore_errors=True)
        prune_labels(self.registry, before, batch_rows)
        return gone


def _pages(tables: Iterator[Any], page_rows: int) -> Iterator[Any]:
    """The rows of ``tables``, in order, ``page_rows`` a table (the last one fewer)."""
    pa, _, _ = _pyarrow()
    held: list[Any] = []
    count = 0
    for table in tables:
        offset = 0
        while offset < table.num_rows:
            take = min(page_rows - count, table.num_rows - offset)
            held.append(table.slice(offset, take))
            count, offset = count + take, offset + take
            if count == page_rows:
                yield pa.concat_tables(held)
                held, count = [], 0
    if count:
        yield pa.concat_tables(held)


def _to_table(rows: list[PredictionRow]) -> Any:
    """``rows`` as an Arrow table of the files' schema."""
    pa, _, _ = _pyarrow()
    schema = _schema(pa)
    columns = zip(*rows, strict=True)
    arrays = [pa.array(column, type) for column, type in zip(columns, schema.types, strict=True)]
    return pa.Table.from_arrays(arrays, schema=schema)


def _day_of(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).date().isoformat()


def _schema(pa: Any) -> Any:
    return pa.schema([(name, getattr(pa, type)()) for name, type in _COLUMNS])


def _pyarrow() -> tuple[Any, Any, Any]:
    """pyarrow, pyarrow.parquet and pyarrow.dataset, imported when first needed (a
    server on the database store never imports them)."""
    try:
        import pyarrow as pa
        import pyarrow.dataset as ds
        import pyarrow.parquet as pq
    except ImportError as exc:  # pragma: no cover - pyarrow is in the dev extra
        raise ImportError(_INSTALL_HINT) from exc
    return pa, pq, ds
