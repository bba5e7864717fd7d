"""Datetimes as a model takes them: ISO 8601 text, in one canonical form.

Training turns every datetime column into ``YYYY-MM-DDTHH:MM:SS`` (UTC, whole seconds)
and the model's own steps parse that text. A request may send any ISO 8601 spelling
(``2024-03-01 12:30``, ``...Z``, ``...+02:00``, fractions of a second); validation parses
it the way training did and passes the canonical text on, so the scikit-learn pipeline
and its ONNX conversion (which reads exactly this layout) see the same instants.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

Array = np.ndarray[Any, Any]

#: The one layout a model's datetime text has (what ``to_iso`` writes).
ISO_LAYOUT = "%Y-%m-%dT%H:%M:%S"


def parse_datetimes(values: pd.Series) -> pd.Series:
    """ISO 8601 text as naive UTC timestamps; what does not parse becomes NaT."""
    parsed = pd.to_datetime(values, errors="coerce", format="ISO8601", utc=True)
    return parsed.dt.tz_localize(None)


def to_iso(stamps: pd.Series) -> pd.Series:
    """Datetimes as the canonical text the model takes; NaT stays missing (NaN)."""
    text = stamps.dt.strftime(ISO_LAYOUT)
    return text.astype(object).where(stamps.notna(), np.nan)


def canonical_datetimes(texts: Array) -> tuple[Array, int | None]:
    """``texts`` (bytes or None, any shape) in the canonical layout, and the flat index of
    the first item that is not an ISO 8601 datetime (None when all are). None stays None."""
    flat = texts.reshape(-1)
    present = np.array([item is not None for item in flat], dtype=bool)
    decoded = pd.Series(
        [item.decode("utf-8", errors="replace") if item is not None else None for item in flat],
        dtype=object,
    )
    stamps = parse_datetimes(decoded)
    bad = np.flatnonzero(present & stamps.isna().to_numpy())
    if bad.size:
        return texts, int(bad[0])
    canonical = to_iso(stamps)
    result = np.empty(len(flat), dtype=np.object_)
    for index, text in enumerate(canonical):
        result[index] = text.encode("ascii") if isinstance(text, str) else None
    return result.reshape(texts.shape), None
