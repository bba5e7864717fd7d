"""Loading a table (CSV or Parquet) and inferring what each column holds.

Every way a file can be unusable ends in :class:`~servewell.errors.InvalidData` naming
the file and the problem: not a table, empty, no such target column.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from difflib import get_close_matches
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from servewell.core.datetimes import parse_datetimes
from servewell.errors import InvalidConfig, InvalidData, MissingDependency
from servewell.training.textfile import sniff_text_table

Kind = Literal["numeric", "categorical", "datetime", "ignore"]

CSV_SUFFIXES = (".csv", ".tsv", ".txt")
PARQUET_SUFFIXES = (".parquet", ".pq")
#: A text column is numeric (or datetime) when at least this share of its values parse.
PARSE_SHARE = 0.9
#: A text column with more distinct values than this share of its rows is an identifier.
IDENTIFIER_SHARE = 0.5
#: A column of whole numbers is an identifier when at least this share of its values
#: are distinct (row numbers, customer numbers); declare it numeric to keep it.
INTEGER_IDENTIFIER_SHARE = 0.95
#: Columns with fewer distinct values than this are never taken for identifiers.
IDENTIFIER_MIN_DISTINCT = 50
#: The first bytes of every Parquet file.
PARQUET_MAGIC = b"PAR1"


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """What identifies a data set: the sha256 of its bytes, its rows and columns."""

    sha256: str
    rows: int
    columns: int
    source: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "sha256": self.sha256,
            "rows": self.rows,
            "columns": self.columns,
            "source": self.source,
        }


@dataclass(frozen=True, slots=True)
class Dataset:
    """A loaded table and where it came from."""

    frame: pd.DataFrame
    fingerprint: Fingerprint


@dataclass(frozen=True, slots=True)
class Column:
    """What one column holds, as inferred (or declared in the pipeline file)."""

    name: str
    kind: Kind
    dtype: str
    missing: int
    distinct: int
    note: str = ""


@dataclass(frozen=True, slots=True)
class Schema:
    columns: tuple[Column, ...]

    def names(self, kind: Kind) -> list[str]:
        return [c.name for c in self.columns if c.kind == kind]

    def kind_of(self, name: str) -> Kind:
        return next(c.kind for c in self.columns if c.name == name)

    def to_dict(self) -> list[dict[str, Any]]:
        return [
            {
                "name": c.name,
                "kind": c.kind,
                "dtype": c.dtype,
                "missing": c.missing,
                "distinct": c.distinct,
                "note": c.note,
            }
            for c in self.columns
        ]


def load_dataset(path: Path, columns: Collection[str] = ()) -> Dataset:
    """Read a CSV or Parquet file; refuse anything else, and empty tables.

    A CSV file of one column is a table only when that column is one of ``columns``
    (a one-input model's input, or the target): any line of text reads as one column.
    """
    if not path.is_file():
        raise InvalidData(f"{path} does not exist or is not a file")
    suffix = path.suffix.lower()
    if suffix in PARQUET_SUFFIXES or _starts_with(path, PARQUET_MAGIC):
        frame = _read_parquet(path)
    elif suffix in CSV_SUFFIXES:
        frame = _read_csv(path, columns)
    else:
        raise InvalidData(
            f"{path.name}: unsupported file type '{suffix or 'none'}'; give a .csv or .parquet file"
        )
    if frame.empty:
        raise InvalidData(f"{path.name} has a header but no data rows")
    return Dataset(frame, _fingerprint(_sha256(path), frame, str(path)))


def dataset_from_frame(frame: pd.DataFrame, source: str) -> Dataset:
    """A Dataset for a table already in memory, fingerprinted by its CSV form."""
    data = frame.to_csv(index=False).encode("utf-8")
    return Dataset(frame, _fingerprint(hashlib.sha256(data).hexdigest(), frame, source))


def _fingerprint(sha256: str, frame: pd.DataFrame, source: str) -> Fingerprint:
    rows, columns = frame.shape
    return Fingerprint(sha256, rows, columns, source)


def _sha256(path: Path) -> str:
    """The file's sha256, read in blocks (never the whole file at once)."""
    with path.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def _starts_with(path: Path, magic: bytes) -> bool:
    with path.open("rb") as file:
        return file.read(len(magic)) == magic


def _read_csv(path: Path, columns: Collection[str]) -> pd.DataFrame:
    sniff_text_table(path)  # a binary or one endless line: refused before pandas reads it
    separator = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", pd.errors.DtypeWarning)
            frame = pd.read_csv(path, sep=separator, encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidData(f"{path.name} is not a UTF-8 text CSV file: {exc.reason}") from exc
    except pd.errors.ParserError as exc:
        raise InvalidData(f"{path.name} is not a well-formed CSV file: {_first_line(exc)}") from exc
    except pd.errors.EmptyDataError as exc:
        raise InvalidData(f"{path.name} is empty") from exc
    unnamed = [c for c in frame.columns if str(c).startswith("Unnamed: ")]
    one_known = len(frame.columns) == 1 and str(frame.columns[0]) in columns
    if len(unnamed) == len(frame.columns) or (len(frame.columns) < 2 and not one_known):
        raise InvalidData(
            f"{path.name} does not look like a CSV table: found {len(frame.columns)} column(s); "
            "expected a header row of comma-separated column names"
        )
    return frame


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except ImportError as exc:
        raise MissingDependency("pyarrow", "parquet") from exc
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError, ... for a bad file
        reason = _first_line(exc)
        raise InvalidData(f"{path.name} is not a readable Parquet file: {reason}") from exc


def require_column(frame: pd.DataFrame, name: str, what: str = "target") -> None:
    if name in frame.columns:
        return
    columns = [str(c) for c in frame.columns]
    close = get_close_matches(name, columns, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    raise InvalidData(
        f"no {what} column '{name}'{hint}; the columns are: {', '.join(columns)}",
        column=name,
    )


def infer_schema(
    frame: pd.DataFrame, target: str, declared: Mapping[str, Kind] | None = None
) -> Schema:
    """The kind of every feature column (the target is left out), declared kinds first."""
    declared = dict(declared or {})
    unknown = sorted(set(declared) - {str(c) for c in frame.columns})
    if unknown:
        raise InvalidConfig(
            f"columns: '{unknown[0]}' is not a column of the data; "
            f"the columns are: {', '.join(map(str, frame.columns))}"
        )
    columns = []
    for name in frame.columns:
        if name == target:
            continue
        series = frame[name]
        kind, note = declared.get(str(name)), "declared"
        if kind is None:
            kind, note = _infer_kind(series)
        columns.append(
            Column(
                str(name),
                kind,
                str(series.dtype),
                int(series.isna().sum()),
                int(series.nunique()),
                note,
            )
        )
    return Schema(tuple(columns))


def _infer_kind(series: pd.Series) -> tuple[Kind, str]:
    present = series.dropna()
    if len(present) == 0:
        return "ignore", "every value is missing"
    if series.dtype.kind == "b":
        return "numeric", ""
    if series.dtype.kind in "iuf":
        if present.nunique() == 1:
            return "ignore", "constant"
        return _numeric_or_identifier(present, "")
    if series.dtype.kind == "M":
        return "datetime", ""
    text = present.astype(str)
    numbers = pd.to_numeric(text, errors="coerce")
    if numbers.notna().mean() >= PARSE_SHARE:
        return _numeric_or_identifier(
            numbers.dropna(), _unparsed_note(text, numbers.notna(), "not a number")
        )
    dates = parse_datetimes(text)
    if dates.notna().mean() >= PARSE_SHARE:
        return "datetime", _unparsed_note(text, dates.notna(), "not a datetime")
    distinct = present.nunique()
    if distinct == 1:
        return "ignore", "constant"
    if distinct > IDENTIFIER_SHARE * len(present) and distinct > IDENTIFIER_MIN_DISTINCT:
        return "ignore", f"looks like an identifier ({distinct} distinct values)"
    return "categorical", ""


def is_integer_identifier(present: pd.Series) -> bool:
    """Whole numbers, nearly all distinct: a row or record number, not a measurement."""
    distinct = present.nunique()
    if distinct <= IDENTIFIER_MIN_DISTINCT or distinct < INTEGER_IDENTIFIER_SHARE * len(present):
        return False
    return bool(present.dtype.kind in "iu" or (present == present.round()).all())


def _numeric_or_identifier(numbers: pd.Series, note: str) -> tuple[Kind, str]:
    if not is_integer_identifier(numbers):
        return "numeric", note
    return "ignore", (
        f"looks like an identifier ({numbers.nunique()} distinct whole numbers in "
        f"{len(numbers)} rows); declare it numeric under columns: to use it"
    )


def _unparsed_note(text: pd.Series, parsed: pd.Series, what: str) -> str:
    bad = text[~parsed]
    if bad.empty:
        return ""
    return f"{len(bad)} value(s) {what}, e.g. '{bad.iloc[0]}'"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
