"""Calibration rows for static int8, drawn from a version's reference profile.

The training pipeline keeps a profile of every input column (:mod:`servewell.stats.profile`):
a histogram for numbers, frequencies for categories. Static quantization needs inputs
that span the ranges real traffic will have, not labels, so rows drawn column by column
from those distributions serve (columns independent of each other: enough to estimate
each activation's range, which is all calibration measures).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from servewell.core.datatypes import to_numpy_dtype
from servewell.errors import InvalidData
from servewell.registry import ModelVersion
from servewell.runtime.base import Array
from servewell.runtime.sklearn import INPUT_NAME, is_columnar

SAMPLE_ROWS = 256
SEED = 0


def sample_from_profile(
    profile: Any, version: ModelVersion, rows: int = SAMPLE_ROWS
) -> dict[str, Array]:
    """``rows`` synthetic input rows for ``version``, column by column from ``profile``."""
    features = profile.get("features") if isinstance(profile, dict) else None
    if not isinstance(features, dict):
        raise InvalidData("the reference profile has no 'features'; give --calibration DATA")
    rng = np.random.default_rng(SEED)
    signature = version.signature
    if not is_columnar(signature):
        names = list(signature.feature_names or ())
        columns = [_draw(features, name, rng, rows).astype(np.float64) for name in names]
        dtype = to_numpy_dtype(signature.inputs[0].datatype)
        return {INPUT_NAME: np.stack(columns, axis=1).astype(dtype)}
    inputs: dict[str, Array] = {}
    for spec in signature.inputs:
        values = _draw(features, spec.name, rng, rows)
        if spec.datatype == "BYTES":
            inputs[spec.name] = np.array([str(v).encode("utf-8") for v in values], dtype=object)
        else:
            inputs[spec.name] = values.astype(to_numpy_dtype(spec.datatype))
    return inputs


def _draw(features: dict[str, Any], name: str, rng: np.random.Generator, rows: int) -> Array:
    column = features.get(name)
    if not isinstance(column, dict):
        raise InvalidData(
            f"the reference profile has no column '{name}' to sample; give --calibration DATA"
        )
    if column.get("kind") == "categorical" and column.get("frequencies"):
        values = list(column["frequencies"])
        weights = np.array([column["frequencies"][v] for v in values], dtype=np.float64)
        return np.array(rng.choice(values, size=rows, p=weights / weights.sum()), dtype=object)
    histogram = column.get("histogram")
    if column.get("kind") == "numeric" and isinstance(histogram, dict):
        edges = np.asarray(histogram["edges"], dtype=np.float64)
        counts = np.asarray(histogram["counts"], dtype=np.float64)
        bins = rng.choice(len(counts), size=rows, p=counts / counts.sum())
        return np.asarray(rng.uniform(edges[bins], edges[bins + 1]))
    raise InvalidData(
        f"the reference profile of column '{name}' has no distribution to sample "
        "(a datetime or an empty column); give --calibration DATA"
    )
