"""Labelled rows to judge a registered version on: given as a file, or recorded at training.

A version may carry its validation split as an attachment named ``validation.csv`` or
``validation.parquet`` (the column it predicts in ``params["target"]``); otherwise the
caller gives a CSV/Parquet file and its target column. Either way the rows become the
named inputs the version's signature asks for, and every mismatch is an
:class:`~servewell.errors.InvalidData` that names the columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import numpy as np
import pandas as pd

from servewell.core.datatypes import to_numpy_dtype
from servewell.core.signature import Signature
from servewell.errors import InvalidData, InvalidInput
from servewell.registry import ModelVersion, RegistryAccess
from servewell.runtime.base import Array
from servewell.runtime.sklearn import INPUT_NAME, is_columnar
from servewell.training.data import load_dataset, require_column
from servewell.training.signature import text_column

#: Attachment names under which a version keeps its validation split, by preference.
VALIDATION_ROLES = ("validation.parquet", "validation.csv")


@dataclass(frozen=True)
class Holdout:
    """Rows as a model's named inputs, their true labels, and where they came from."""

    inputs: dict[str, Array]
    truth: Array
    source: str

    @property
    def rows(self) -> int:
        return len(self.truth)

    def head(self, rows: int) -> dict[str, Array]:
        return {name: array[:rows] for name, array in self.inputs.items()}


def load_holdout(
    access: RegistryAccess,
    version: ModelVersion,
    path: Path | None = None,
    target: str | None = None,
) -> Holdout:
    """The evaluation rows: the file given, else the validation split the version carries."""
    target = target or _recorded_target(version)
    if path is not None:
        if target is None:
            raise InvalidInput("give --target COLUMN: the column of --eval DATA holding labels")
        frame = load_dataset(path).frame
        return holdout_from_frame(frame, target, version.signature, str(path))
    role = next((r for r in VALIDATION_ROLES if version.has_artifact(r)), None)
    if role is None:
        raise InvalidInput(
            f"{version.name}@{version.version} has no validation split recorded at training "
            f"(an attachment {' or '.join(VALIDATION_ROLES)}); give --eval DATA --target COLUMN"
        )
    if target is None:
        raise InvalidInput(
            f"{version.name}@{version.version} records no target column; give --target COLUMN"
        )
    frame = read_attachment_table(access, version, role)
    return holdout_from_frame(frame, target, version.signature, f"{version.name}@{role}")


def read_attachment_table(access: RegistryAccess, version: ModelVersion, role: str) -> Any:
    """A CSV/Parquet attachment as a DataFrame (its bytes checked on the way)."""
    artifact = version.artifact(role)
    stored = access.artifacts.fetch(artifact.uri, artifact.sha256)
    with TemporaryDirectory() as folder:
        named = Path(folder) / role  # the store's files have no suffix; the loader wants one
        named.write_bytes(stored.read_bytes())
        return load_dataset(named).frame


def holdout_from_frame(
    frame: pd.DataFrame, target: str, signature: Signature, source: str
) -> Holdout:
    require_column(frame, target)
    if frame[target].isna().any():
        raise InvalidData(f"target column '{target}' of {source} has missing labels")
    truth = frame[target].to_numpy()
    classes = signature.class_labels or ()
    known = {str(c) for c in classes}
    unknown = sorted({str(_plain(v)) for v in truth} - known)
    if classes and unknown:
        raise InvalidData(
            f"target column '{target}' of {source} holds labels the model does not know: "
            f"{', '.join(unknown[:5])} (its classes: {', '.join(map(str, classes))})",
            column=target,
        )
    return Holdout(inputs_from_frame(frame, signature, source), truth, source)


def inputs_from_frame(frame: pd.DataFrame, signature: Signature, source: str) -> dict[str, Array]:
    """A table's rows as the named inputs ``signature`` describes."""
    if not is_columnar(signature):
        spec = signature.inputs[0]
        columns = list(signature.feature_names or ())
        if not columns:
            raise InvalidData(
                f"{spec.name} has no feature names in its signature, so columns of {source} "
                "cannot be matched to it; register the version with feature_names"
            )
        _require_columns(frame, columns, source)
        return {INPUT_NAME: _numbers(frame[columns], spec.datatype, source)}
    _require_columns(frame, [spec.name for spec in signature.inputs], source)
    arrays: dict[str, Array] = {}
    for spec in signature.inputs:
        column = frame[spec.name]
        if spec.datatype == "BYTES":
            arrays[spec.name] = text_column(column)
        else:
            arrays[spec.name] = _numbers(column, spec.datatype, source)
    return arrays


def _numbers(values: Any, datatype: str, source: str) -> Array:
    try:
        with np.errstate(over="ignore"):  # beyond the datatype becomes inf: refused below
            numbers = np.asarray(values.to_numpy(dtype=to_numpy_dtype(datatype)))
    except (ValueError, TypeError) as exc:
        frame = values if isinstance(values, pd.DataFrame) else values.to_frame()
        bad = [str(c) for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
        raise InvalidData(
            f"column(s) {', '.join(bad or map(str, frame.columns))} of {source} are not "
            f"numbers, but the model takes {datatype}",
            columns=bad,
        ) from exc
    _refuse_out_of_range(values, numbers, datatype, source)
    return numbers


def _refuse_out_of_range(values: Any, numbers: Array, datatype: str, source: str) -> None:
    """A finite value that became infinite in ``datatype`` (1e308 in FP32) is refused,
    naming its column and row; an infinity in the file stays the model's to refuse."""
    if numbers.dtype.kind != "f":
        return
    widened = np.asarray(values.to_numpy(dtype=np.float64)).reshape(numbers.shape)
    overflowed = np.isinf(numbers) & np.isfinite(widened)
    if not overflowed.any():
        return
    row, *rest = (int(i) for i in np.argwhere(overflowed)[0])
    columns = values.columns if isinstance(values, pd.DataFrame) else [values.name]
    column = columns[rest[0] if rest else 0]
    raise InvalidData(
        f"column '{column}' of {source} has {widened[(row, *rest)]:g} in data row {row + 1}, "
        f"out of the {datatype} range (±{np.finfo(numbers.dtype).max:g})",
        column=str(column),
    )


def _require_columns(frame: pd.DataFrame, columns: list[str], source: str) -> None:
    missing = [name for name in columns if name not in frame.columns]
    if missing:
        raise InvalidData(
            f"{source} lacks the model's input column(s) {', '.join(map(repr, missing[:10]))}"
            f"{' …' if len(missing) > 10 else ''}; it has {', '.join(map(str, frame.columns))}",
            columns=missing,
        )


def _recorded_target(version: ModelVersion) -> str | None:
    target = version.params.get("target")
    return target if isinstance(target, str) and target else None


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value
