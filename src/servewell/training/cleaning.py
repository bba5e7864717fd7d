"""Cleaning: typed columns, and rows that cannot be learnt from dropped and counted.

Each dropped row is counted once, under the first reason that applies, in this order:
missing target, a value of the wrong type, a value outside its valid range, a missing
feature (unless imputing), a duplicate of an earlier row. A duplicate repeats an earlier
row in every column of the data, ignored ones included (two records that differ only in
an id are two records), or in the columns ``cleaning.duplicate_columns`` names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from servewell.core.datetimes import parse_datetimes, to_iso
from servewell.core.task import Task
from servewell.errors import InvalidConfig, InvalidData
from servewell.training.config import CleaningConfig
from servewell.training.data import Schema

Reason = Literal["missing target", "invalid", "out of range", "missing", "duplicate"]


@dataclass(frozen=True, slots=True)
class Drop:
    """Rows removed for one reason (and column)."""

    reason: Reason
    rows: int
    column: str | None = None
    example: str | None = None
    columns: tuple[str, ...] = ()
    """A duplicate's: the columns compared, when not every column of the data."""

    def describe(self) -> str:
        rows = f"{self.rows} row{'s' if self.rows != 1 else ''}"
        if self.reason == "duplicate":
            where = ", ".join(f"`{c}`" for c in self.columns) if self.columns else "every column"
            return f"dropped {rows} repeating an earlier row in {where}"
        if self.reason == "missing target":
            return f"dropped {rows} with no target value (`{self.column}`)"
        what = {"invalid": "an invalid", "out of range": "an out-of-range", "missing": "missing"}
        example = f" (e.g. '{self.example}')" if self.example else ""
        return f"dropped {rows} with {what[self.reason]} `{self.column}`{example}"


@dataclass(frozen=True, slots=True)
class CleaningReport:
    rows_in: int
    rows_out: int
    drops: tuple[Drop, ...]
    imputed: dict[str, int] = field(default_factory=dict)
    """Missing values per column left for the model's imputer (``missing: impute``)."""

    def lines(self) -> list[str]:
        text = [drop.describe() for drop in self.drops]
        text += [f"imputing {n} missing `{c}` inside the model" for c, n in self.imputed.items()]
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "drops": [
                {
                    "reason": d.reason,
                    "column": d.column,
                    "rows": d.rows,
                    "example": d.example,
                    "columns": list(d.columns),
                    "message": d.describe(),
                }
                for d in self.drops
            ],
            "imputed": self.imputed,
        }


def clean(
    frame: pd.DataFrame, schema: Schema, target: str, task: Task, config: CleaningConfig
) -> tuple[pd.DataFrame, CleaningReport]:
    """Typed feature columns plus the target, with unusable rows removed and counted."""
    _check_columns(frame, schema, config)
    used = [c.name for c in schema.columns if c.kind != "ignore"]
    data = frame[[*used, target]].copy()
    keep = pd.Series(True, index=data.index)
    drops: list[Drop] = []

    def drop(mask: pd.Series, reason: Reason, column: str, example: Any = None) -> None:
        mask = mask & keep
        if mask.any():
            drops.append(Drop(reason, int(mask.sum()), column, _text(example, data, mask, column)))
            keep.loc[mask] = False

    drop(data[target].isna(), "missing target", target)
    data[target] = _typed_target(data[target], target, task, drop)
    for column in schema.columns:
        if column.kind in ("numeric", "datetime"):
            data[column.name] = _typed(data[column.name], column.kind, column.name, drop)
        elif column.kind == "categorical":
            data[column.name] = _as_text(data[column.name])
    for name, bounds in config.valid.items():
        values = data[name]
        low = bounds.min if bounds.min is not None else -np.inf
        high = bounds.max if bounds.max is not None else np.inf
        drop(values.notna() & ((values < low) | (values > high)), "out of range", name, "value")
    imputed: dict[str, int] = {}
    for name in used:
        missing = data[name].isna() & keep
        if config.missing == "drop":
            drop(missing, "missing", name)
        elif missing.any():
            imputed[name] = int(missing.sum())
    if config.duplicates == "drop":
        duplicated = _duplicated(frame, data, config) & keep
        if duplicated.any():
            drops.append(Drop("duplicate", int(duplicated.sum()), columns=config.duplicate_columns))
            keep.loc[duplicated] = False
    cleaned = data[keep].reset_index(drop=True)
    report = CleaningReport(len(frame), len(cleaned), tuple(drops), imputed)
    _check_enough_left(report, config, target)
    return cleaned, report


def _duplicated(frame: pd.DataFrame, typed: pd.DataFrame, config: CleaningConfig) -> pd.Series:
    """Rows equal to an earlier one in the compared columns (typed values where cleaning
    typed them, so "1" and "1.0" in a numeric column are equal)."""
    compared = list(config.duplicate_columns) or list(frame.columns)
    values = frame[compared].copy()
    for name in compared:
        if name in typed.columns:
            values[name] = typed[name]
    return values.duplicated()


def _typed(values: pd.Series, kind: str, name: str, drop: Any) -> pd.Series:
    present = values.notna()
    if kind == "numeric":
        if values.dtype.kind == "b":
            return values.astype(np.int64)
        if values.dtype.kind in "iu":
            return values.astype(np.int64)
        numbers = pd.to_numeric(values, errors="coerce")
        numbers = numbers.where(np.isfinite(numbers.astype(np.float64)))
        drop(present & numbers.isna(), "invalid", name, "value")
        return numbers.astype(np.float64)
    stamps = values if values.dtype.kind == "M" else parse_datetimes(values.astype(str))
    drop(present & stamps.isna(), "invalid", name, "value")
    return to_iso(stamps)


def _as_text(values: pd.Series) -> pd.Series:
    return values.map(lambda v: v if pd.isna(v) else str(v)).astype(object)


def _typed_target(values: pd.Series, name: str, task: Task, drop: Any) -> pd.Series:
    present = values.notna()
    if task == "regression":
        numbers = pd.to_numeric(values, errors="coerce")
        drop(present & numbers.isna(), "invalid", name, "value")
        return numbers.astype(np.float64)
    if values.dtype.kind in "iufb":
        whole = values.dropna()
        if (whole == np.round(whole)).all():  # rows with no target are dropped anyway
            return values.fillna(0).astype(np.int64)
        return values.map(lambda v: v if pd.isna(v) else f"{v:g}").astype(object)
    return _as_text(values)


def _text(example: Any, data: pd.DataFrame, mask: pd.Series, column: str) -> str | None:
    if example is None:
        return None
    return str(data.loc[mask, column].iloc[0]) if column in data else None


def _check_columns(frame: pd.DataFrame, schema: Schema, config: CleaningConfig) -> None:
    """The columns the cleaning rules name exist (and ranges are on numbers)."""
    unknown = [name for name in config.duplicate_columns if name not in frame.columns]
    if unknown:
        raise InvalidConfig(
            f"cleaning.duplicate_columns: '{unknown[0]}' is not a column of the data"
        )
    for name in config.valid:
        kinds = {c.name: c.kind for c in schema.columns}
        if name not in kinds:
            raise InvalidConfig(f"cleaning.valid: '{name}' is not a feature column of the data")
        if kinds[name] != "numeric":
            raise InvalidConfig(
                f"cleaning.valid: '{name}' is {kinds[name]}, ranges apply to numeric columns"
            )


def _check_enough_left(report: CleaningReport, config: CleaningConfig, target: str) -> None:
    if report.rows_out == 0:
        reasons = "; ".join(report.lines())
        raise InvalidData(f"no rows left after cleaning: {reasons}")
    dropped = 1 - report.rows_out / report.rows_in
    if dropped > config.max_dropped_fraction:
        worst = max(report.drops, key=lambda d: d.rows)
        raise InvalidData(
            f"cleaning would drop {dropped:.0%} of the rows (more than "
            f"cleaning.max_dropped_fraction={config.max_dropped_fraction}); most: "
            f"{worst.describe()}. Fix the data, declare the column's kind, or impute"
        )
