"""Reference profiles: what a column's values looked like, so later values can be compared.

A profile is plain JSON-able data. The training pipeline stores one per registered
version (every input column and the prediction distribution); monitoring compares live
traffic to it. Each column has its count, missing values and summary (moments,
quantiles and an equal-width histogram for numbers, the most common values' shares for
categories) and, under ``drift``, what the drift tests read
(:mod:`servewell.stats.reference`: quantile bin edges and a sketch of the values);
``sample`` keeps up to :data:`SAMPLE_ROWS` whole rows (drawn with a fixed seed, in
their original order) for what needs values rather than counts. A profile written
before ``drift`` and ``sample`` were kept still loads; drift tells which of its
columns it cannot judge.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import numpy as np

from servewell.stats.reference import categorical_reference_fields, numeric_reference_fields

Array = np.ndarray[Any, Any]
Kind = Literal["numeric", "categorical"]

#: The quantiles kept for a numeric column.
QUANTILES: tuple[float, ...] = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
#: Most rows a profile's sample keeps.
SAMPLE_ROWS = 10_000


def numeric_profile(values: Array, *, bins: int = 10) -> dict[str, Any]:
    """Count, missing, moments, quantiles and an equal-width histogram of a number column.

    Whole numbers get bins of whole widths centred on them (edges at half-integers), so
    no bin holds a share of a value and ``integer`` says to label them as such.
    """
    data = np.asarray(values, dtype=np.float64).reshape(-1)
    finite = data[np.isfinite(data)]
    profile: dict[str, Any] = {
        "kind": "numeric",
        "count": len(data),
        "missing": int(len(data) - len(finite)),
    }
    if len(finite) == 0:
        return profile
    integer = bool(np.all(finite == np.round(finite)))
    counts, edges = np.histogram(finite, bins=_integer_edges(finite, bins) if integer else bins)
    return profile | {
        "integer": integer,
        "mean": float(finite.mean()),
        "std": float(finite.std()),
        "min": float(finite.min()),
        "max": float(finite.max()),
        "quantiles": {
            str(q): float(v) for q, v in zip(QUANTILES, np.quantile(finite, QUANTILES), strict=True)
        },
        "histogram": {"edges": edges.tolist(), "counts": counts.tolist()},
        "drift": numeric_reference_fields(data),
    }


def _integer_edges(values: Array, bins: int) -> Array:
    """At most ``bins`` equal bins of a whole width, each centred on whole numbers."""
    low, high = float(values.min()) - 0.5, float(values.max()) + 0.5
    width = max(1.0, float(np.ceil((high - low) / bins)))
    return low + width * np.arange(int(np.ceil((high - low) / width)) + 1)


def categorical_profile(values: Array, *, top: int = 50) -> dict[str, Any]:
    """Count, missing and the relative frequency of the ``top`` most common values."""
    data = np.asarray(values, dtype=object).reshape(-1)
    present = [v for v in data if not _is_missing(v)]
    profile: dict[str, Any] = {
        "kind": "categorical",
        "count": len(data),
        "missing": int(len(data) - len(present)),
    }
    if not present:
        return profile | {"frequencies": {}, "other": 0.0, "distinct": 0, "drift": None}
    keys, counts = np.unique(np.array([str(v) for v in present], dtype=object), return_counts=True)
    order = np.argsort(-counts, kind="stable")[:top]
    total = float(counts.sum())
    frequencies = {str(keys[i]): float(counts[i] / total) for i in order}
    return profile | {
        "frequencies": frequencies,
        "other": float(max(0.0, 1.0 - sum(frequencies.values()))),
        "distinct": len(keys),
        "drift": categorical_reference_fields(data),
    }


def build_profile(
    columns: Mapping[str, Array],
    kinds: Mapping[str, Kind],
    *,
    predictions: Array | None = None,
    prediction_kind: Kind = "categorical",
    sample_rows: int = SAMPLE_ROWS,
) -> dict[str, Any]:
    """A profile of every column (by its kind), of the predictions made on them, and a
    sample of up to ``sample_rows`` rows of both."""
    features = {
        name: numeric_profile(values) if kinds[name] == "numeric" else categorical_profile(values)
        for name, values in columns.items()
    }
    rows = len(next(iter(columns.values()))) if columns else 0
    profile: dict[str, Any] = {"rows": rows, "features": features}
    if predictions is not None:
        profile["prediction"] = (
            numeric_profile(predictions)
            if prediction_kind == "numeric"
            else categorical_profile(predictions)
        )
    chosen = sample_indices(rows, sample_rows)
    profile["sample"] = {
        "rows": len(chosen),
        "features": {name: sample_values(values, chosen) for name, values in columns.items()},
        "prediction": None if predictions is None else sample_values(predictions, chosen),
    }
    return profile


def sample_indices(rows: int, limit: int = SAMPLE_ROWS, seed: int = 0) -> Array:
    """Which of ``rows`` rows a sample keeps: all of them, or ``limit`` drawn without
    replacement with a fixed seed (the same rows every time), in their original order."""
    if rows <= limit:
        return np.arange(rows)
    return np.sort(np.random.default_rng(seed).choice(rows, size=limit, replace=False))


def sample_values(values: Array, chosen: Array) -> list[Any]:
    """The chosen rows' values as JSON: numbers as floats (whole ones as ints), text as
    text, missing ones as null."""
    picked = np.asarray(values, dtype=object).reshape(-1)[chosen]
    return [_plain(value) for value in picked.tolist()]


def _plain(value: Any) -> Any:
    if _is_missing(value):
        return None
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        number = float(value)
        return None if not np.isfinite(number) else number
    return str(value)


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def profile_summary(profile: Mapping[str, Any]) -> dict[str, Any]:
    """The profile without its sample and drift sketches: what a report shows (those
    are thousands of numbers per column, for the drift tests only)."""
    summary = {key: value for key, value in profile.items() if key != "sample"}
    for key in ("prediction", "score"):
        if isinstance(profile.get(key), dict):
            summary[key] = _without_drift(profile[key])
    features = profile.get("features") or {}
    summary["features"] = {name: _without_drift(entry) for name, entry in features.items()}
    return summary


def _without_drift(entry: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in entry.items() if key != "drift"}
