"""Output rows and the files they go to: CSV, JSON Lines or Parquet, written as they come.

Each output row has four columns: the input's row id (named after the id column, or
``row``), ``prediction``, ``probabilities`` (class label -> probability, for a
classifier) and ``error`` (the message a bad row got; empty otherwise). In CSV and
Parquet, values that are not scalars (probabilities, a multi-output prediction) are
JSON text.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from servewell.core.signature import Signature
from servewell.jobs.tables import pyarrow_modules

ROW = "row"
"""The id column's name when the user names none: the row's number in the input."""
COLUMNS = ("prediction", "probabilities", "error")

Row = dict[str, Any]


def id_name(id_column: str | None) -> str:
    return id_column or ROW


def encode_text(rows: list[Row], table_format: str, header: bool) -> bytes:
    """``rows`` as CSV (with the header line when ``header``) or JSON Lines."""
    if table_format == "jsonl":
        return b"".join(orjson.dumps(row) + b"\n" for row in rows)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if header and rows:
        writer.writerow(rows[0].keys())
    writer.writerows([_csv_cell(value) for value in row.values()] for row in rows)
    return buffer.getvalue().encode()


def csv_header(id_column: str | None) -> bytes:
    return (",".join((id_name(id_column), *COLUMNS)) + "\n").encode()


def write_table(
    path: Path, table_format: str, chunks: Iterable[list[Row]], signature: Signature
) -> int:
    """Write the chunks' rows to ``path`` in ``table_format``, all or nothing (a temp
    file renamed into place); how many rows."""
    with atomic_file(path) as temp:
        if table_format == "parquet":
            return _write_parquet(temp, chunks, signature)
        count = 0
        with temp.open("wb") as out:
            for index, rows in enumerate(chunks):
                out.write(encode_text(rows, table_format, header=index == 0))
                count += len(rows)
        return count


@contextmanager
def atomic_file(path: Path) -> Iterator[Path]:
    """A temp file beside ``path``, renamed onto it when the block ends without error
    (readers see the whole file or none), removed when it raises."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.close(fd)
    temp = Path(name)
    try:
        yield temp
        with temp.open("rb+") as written:
            os.fsync(written.fileno())
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


def read_jsonl(path: Path) -> list[Row]:
    """The rows of one JSON Lines file (a chunk's results: bounded by ``chunk_rows``)."""
    with path.open("rb") as lines:
        return [orjson.loads(line) for line in lines if line.strip()]


def _write_parquet(path: Path, chunks: Iterable[list[Row]], signature: Signature) -> int:
    return _write_parquet_to(str(path), chunks, signature)


def _write_parquet_to(where: Any, chunks: Iterable[list[Row]], signature: Signature) -> int:
    pa, pq = pyarrow_modules()
    writer: Any = None
    schema: Any = None
    count = 0
    for rows in chunks:
        if not rows:
            continue
        if writer is None:
            schema = _parquet_schema(pa, next(iter(rows[0])), rows[0], signature)
            writer = pq.ParquetWriter(where, schema)
        columns = list(zip(*(row.values() for row in rows), strict=True))
        arrays = [
            pa.array([_parquet_cell(value, field.type) for value in column], field.type)
            for column, field in zip(columns, schema, strict=True)
        ]
        writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
        count += len(rows)
    if writer is not None:
        writer.close()
    return count


def _parquet_schema(pa: Any, first_name: str, first: Row, signature: Signature) -> Any:
    id_type = pa.int64() if first_name == ROW else pa.string()
    labels = signature.class_labels
    if labels is not None and all(isinstance(label, int) for label in labels):
        prediction = pa.int64()
    elif labels is not None:
        prediction = pa.string()
    else:
        prediction = pa.float64() if not isinstance(first.get("prediction"), list) else pa.string()
    return pa.schema(
        [
            (first_name, id_type),
            ("prediction", prediction),
            ("probabilities", pa.string()),
            ("error", pa.string()),
        ]
    )


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    return value


def _parquet_cell(value: Any, arrow_type: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    if str(arrow_type) == "string":
        return str(value)
    return value
