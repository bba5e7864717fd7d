"""Input tables read in chunks: CSV, JSON Lines or Parquet, streamed, never whole.

A chunk holds ``chunk_rows`` rows, each as the model's steps take it (an object keyed by
column, the columns the model does not take left out; a list of values in feature order
for a CSV file without a header), and each row's id: the value of the column the user
named, or the row's number in the file (from 0). A row that cannot even be read (a JSON
Lines line that is not JSON) is a :class:`BadRow`: it gets its message in the results
and the job goes on.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from servewell.errors import InvalidInput

if TYPE_CHECKING:
    from servewell.core.signature import Signature

FORMATS = ("csv", "jsonl", "parquet")
_SUFFIXES = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}


@dataclass(frozen=True, slots=True)
class BadRow:
    """A row that could not be read; ``message`` goes to its ``error`` column."""

    message: str


@dataclass(frozen=True, slots=True)
class Chunk:
    """Rows ``first_row`` to ``first_row + len(rows)`` of a table."""

    index: int
    first_row: int
    ids: list[Any]
    rows: list[Any]


def format_of(path: Path, given: str | None = None) -> str:
    """The table format: ``given`` (``--format``, ``?format=``), else from the suffix."""
    if given is not None:
        if given not in FORMATS:
            raise InvalidInput(f"unknown format '{given}'; formats are {', '.join(FORMATS)}")
        return given
    found = _SUFFIXES.get(path.suffix.lower())
    if found is None:
        raise InvalidInput(
            f"cannot tell the format of '{path.name}' from its suffix; "
            f"name it .csv, .jsonl or .parquet, or say --format ({', '.join(FORMATS)})"
        )
    return found


def taken_columns(signature: Signature) -> set[str]:
    """The names a row's keys may have: feature names, or the inputs' names."""
    if signature.feature_names is not None and len(signature.inputs) == 1:
        return set(signature.feature_names) | {signature.inputs[0].name}
    return {spec.name for spec in signature.inputs}


def read_chunks(
    path: Path,
    table_format: str,
    signature: Signature,
    chunk_rows: int,
    id_column: str | None = None,
) -> Generator[Chunk, None, None]:
    """The table's chunks, in order; InvalidInput when the file is not of its format or
    lacks ``id_column``."""
    rows = _ROW_READERS[table_format](path, signature, id_column)
    index, first_row = 0, 0
    ids: list[Any] = []
    batch: list[Any] = []
    for row_id, row in rows:
        ids.append(first_row + len(batch) if row_id is _ROW_NUMBER else row_id)
        batch.append(row)
        if len(batch) == chunk_rows:
            yield Chunk(index, first_row, ids, batch)
            index, first_row, ids, batch = index + 1, first_row + len(batch), [], []
    if batch:
        yield Chunk(index, first_row, ids, batch)


def count_rows(path: Path, table_format: str) -> int:
    """How many rows the table has (read through once, in constant memory)."""
    if table_format == "parquet":
        return int(_parquet_file(path).metadata.num_rows)
    with _open_text(path) as lines:
        if table_format == "jsonl":
            return sum(1 for line in lines if line.strip())
        records = _csv_records(lines, path)
        first = next(records, None)
        return 0 if first is None else sum(1 for _ in records) + (not _is_header(first))


_ROW_NUMBER = object()
"""The id of a row without an id column: its number, filled in by ``read_chunks``."""


def _csv_rows(path: Path, signature: Signature, id_column: str | None) -> Iterator[Any]:
    with _open_text(path) as lines:
        records = _csv_records(lines, path)
        first = next(records, None)
        if first is None:
            return
        if not _is_header(first):  # no header row: values in feature order
            _refuse_id_without_header(id_column, path)
            yield _ROW_NUMBER, [cell_value(cell) for cell in first]
            for record in records:
                yield _ROW_NUMBER, [cell_value(cell) for cell in record]
            return
        header = first
        id_at = _id_position(header, id_column, path)
        row_of = _csv_row_builder(header, signature)
        for record in records:
            row_id = record[id_at] if id_at is not None and id_at < len(record) else _ROW_NUMBER
            if len(record) != len(header):
                width = f"{len(record)} fields; the header has {len(header)}"
                yield row_id, BadRow(f"the CSV record has {width}")
                continue
            yield row_id, row_of(record)


def _csv_row_builder(header: list[str], signature: Signature) -> Any:
    """How a CSV record becomes a row: its values in feature order when the header has
    every feature of a one-matrix model (the quick way), else an object of the columns
    the model takes (validation then names what is missing)."""
    features = signature.feature_names
    if features is not None and len(signature.inputs) == 1 and set(features) <= set(header):
        positions = [header.index(name) for name in features]
        return lambda record: [cell_value(record[i]) for i in positions]
    taken = taken_columns(signature)
    text = {spec.name for spec in signature.inputs if spec.datatype == "BYTES"}
    kept = [(i, name, name in text) for i, name in enumerate(header) if name in taken]
    return lambda record: {name: cell_value(record[i], is_text) for i, name, is_text in kept}


def _jsonl_rows(path: Path, signature: Signature, id_column: str | None) -> Iterator[Any]:
    taken = taken_columns(signature)
    with _open_text(path) as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                yield _ROW_NUMBER, BadRow(f"line {number} is not valid JSON: {exc.msg}")
                continue
            if not isinstance(row, dict):
                yield _ROW_NUMBER, row  # a list of values: validation says what is wrong
                continue
            row_id = row.get(id_column, _ROW_NUMBER) if id_column is not None else _ROW_NUMBER
            yield row_id, {key: value for key, value in row.items() if key in taken}


def _parquet_rows(path: Path, signature: Signature, id_column: str | None) -> Iterator[Any]:
    parquet = _parquet_file(path)
    names = parquet.schema_arrow.names
    if id_column is not None and id_column not in names:
        raise InvalidInput(f"{path.name} has no column '{id_column}' (--id-column)")
    taken = [name for name in names if name in taken_columns(signature)]
    read = [*taken, id_column] if id_column is not None and id_column not in taken else taken
    for batch in parquet.iter_batches(batch_size=4096, columns=read or None):
        for row in batch.to_pylist():
            row_id = row[id_column] if id_column is not None else _ROW_NUMBER
            yield row_id, {name: row[name] for name in taken}


_ROW_READERS = {"csv": _csv_rows, "jsonl": _jsonl_rows, "parquet": _parquet_rows}


def pyarrow_modules() -> tuple[Any, Any]:
    """``pyarrow`` and ``pyarrow.parquet``, or one line saying how to get them (Parquet
    in or out needs the ``parquet`` extra)."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise InvalidInput("Parquet needs pyarrow: pip install 'servewell[parquet]'") from None
    return pa, pq


def _parquet_file(path: Path) -> Any:
    _, pq = pyarrow_modules()
    try:
        return pq.ParquetFile(path)
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"{path.name} is not a Parquet file: {exc}") from None


class _TextLines:
    """A UTF-8 file's lines, with reading errors as InvalidInput."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: Any = None

    def __enter__(self) -> Iterator[str]:
        try:
            self._file = self.path.open(encoding="utf-8", newline="")
        except OSError as exc:
            raise InvalidInput(f"cannot read {self.path}: {exc.strerror}") from exc
        return self._checked()

    def _checked(self) -> Iterator[str]:
        try:
            yield from self._file
        except UnicodeDecodeError:
            raise InvalidInput(f"{self.path.name} is not UTF-8 text") from None

    def __exit__(self, *exc_info: object) -> None:
        self._file.close()


def _open_text(path: Path) -> _TextLines:
    return _TextLines(path)


def _csv_records(lines: Iterator[str], path: Path) -> Iterator[list[str]]:
    """The CSV records that are not blank lines."""
    try:
        for record in csv.reader(lines):
            if record:
                yield record
    except csv.Error as exc:
        raise InvalidInput(f"{path.name} is not a CSV file: {exc}") from None


def _is_header(record: list[str]) -> bool:
    return not all(is_number(cell) for cell in record)


def _id_position(header: list[str], id_column: str | None, path: Path) -> int | None:
    if id_column is None:
        return None
    if id_column not in header:
        raise InvalidInput(f"{path.name} has no column '{id_column}' (--id-column)")
    return header.index(id_column)


def _refuse_id_without_header(id_column: str | None, path: Path) -> None:
    if id_column is not None:
        raise InvalidInput(f"{path.name} has no header row, so no column '{id_column}'")


def is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def cell_value(cell: str, text: bool = False) -> Any:
    """A CSV cell as JSON would carry it: an empty cell is a missing value (null)."""
    if cell == "":
        return None
    if text:
        return cell
    try:
        return float(cell)  # parsed once: this runs for every cell of a batch job
    except ValueError:
        return cell
