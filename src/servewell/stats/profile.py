"""Reference profiles: what a column's values looked like, so later values can be compared.

A profile is plain JSON-able data. The training pipeline stores one per registered
version (every input column and the prediction distribution); monitoring compares live
traffic to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import numpy as np

Array = np.ndarray[Any, Any]
Kind = Literal["numeric", "categorical"]

#: The quantiles kept for a numeric column.
QUANTILES: tuple[float, ...] = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)


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
        return profile | {"frequencies": {}, "other": 0.0, "distinct": 0}
    keys, counts = np.unique(np.array([str(v) for v in present], dtype=object), return_counts=True)
    order = np.argsort(-counts, kind="stable")[:top]
    total = float(counts.sum())
    frequencies = {str(keys[i]): float(counts[i] / total) for i in order}
    return profile | {
        "frequencies": frequencies,
        "other": float(max(0.0, 1.0 - sum(frequencies.values()))),
        "distinct": len(keys),
    }


def build_profile(
    columns: Mapping[str, Array],
    kinds: Mapping[str, Kind],
    *,
    predictions: Array | None = None,
    prediction_kind: Kind = "categorical",
) -> dict[str, Any]:
    """A profile of every column (by its kind) and of the predictions made on them."""
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
    return profile


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))
