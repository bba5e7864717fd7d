"""Mergeable, fixed-size summaries of one feature's values in a window: what drift is
computed from, so a window's drift costs O(bins) and never a rescan of logged rows.

- :class:`NumericSketch`: per bin of fixed edges (left-closed, open at both ends, see
  :mod:`servewell.stats.binning`), how many values fell in it and their sum, plus the
  missing ones (None, NaN and ±inf). The edges are the reference's fine quantile edges
  (a few thousand): the counts give both CDFs at every edge, which is all the KS
  statistic needs to within the reference's share of one bin, and a coarser PSI
  histogram is their sum over the PSI bins; the sums give each bin's mean, which the
  Wasserstein distance needs beyond the reference's range.
- :class:`CategoricalSketch`: a count per category the reference tracks (its most
  common ones), one for every other value and one for missing values.

``update(values)`` is one vectorised pass; ``merge(other)`` adds counts (exact) and sums
(exact up to float rounding); two sketches merge only on the same edges or categories.
``to_dict()``/``from_dict()`` give JSON-able dicts: the edges or categories stay with
the reference (a version's profile) and a sketch names them by ``layout``, a short
digest, so one stored per window and replica stays small.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from servewell.errors import InvalidData
from servewell.stats.binning import bin_of

Array = np.ndarray[Any, Any]


class NumericSketch:
    """Counts and sums of a number column's values per bin of ``edges``."""

    __slots__ = ("_layout", "counts", "edges", "missing", "sums")

    def __init__(
        self,
        edges: Array,
        counts: Array | None = None,
        sums: Array | None = None,
        missing: int = 0,
    ) -> None:
        self.edges = np.asarray(edges, dtype=np.float64)
        size = len(self.edges) + 1
        self.counts = np.zeros(size, np.int64) if counts is None else np.asarray(counts, np.int64)
        self.sums = np.zeros(size, np.float64) if sums is None else np.asarray(sums, np.float64)
        self.missing = missing
        self._layout: str | None = None

    @classmethod
    def of(cls, edges: Array, values: Any) -> NumericSketch:
        sketch = cls(edges)
        sketch.update(values)
        return sketch

    @property
    def rows(self) -> int:
        """How many present (finite) values were seen."""
        return int(self.counts.sum())

    @property
    def layout(self) -> str:
        if self._layout is None:  # a digest of a few thousand edges: once per sketch
            self._layout = layout_of(self.edges)
        return self._layout

    def update(self, values: Any) -> None:
        numbers = _as_numbers(values)
        finite = np.isfinite(numbers)
        # sorted, the values walk the edges in order: searching a few thousand edges for
        # each value in turn is then cache-friendly, and the sort costs less than it saves
        # (30 demo features, 5,000 varied rows: ~2.7 -> ~1.8 µs a row, bench/README.md)
        present = np.sort(numbers[finite])
        bins = bin_of(self.edges, present)
        self.counts += np.bincount(bins, minlength=len(self.counts))
        self.sums += np.bincount(bins, weights=present, minlength=len(self.sums))
        self.missing += int(len(numbers) - len(present))

    def merge(self, other: NumericSketch) -> NumericSketch:
        """A new sketch holding both (on the same edges)."""
        if other.layout != self.layout:
            raise InvalidData("numeric sketches on different bin edges do not merge")
        counts, sums = self.counts + other.counts, self.sums + other.sums
        merged = NumericSketch(self.edges, counts, sums, self.missing + other.missing)
        merged._layout = self._layout
        return merged

    def means(self) -> tuple[Array, Array]:
        """Each non-empty bin's mean value and count."""
        filled = self.counts > 0
        return self.sums[filled] / self.counts[filled], self.counts[filled]

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "numeric",
            "layout": self.layout,
            "counts": self.counts.tolist(),
            "sums": self.sums.tolist(),
            "missing": self.missing,
        }

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], edges: Array, layout: str | None = None
    ) -> NumericSketch:
        """The sketch ``to_dict`` gave, on ``edges`` (refused if they are not its own;
        ``layout``: theirs, when known already)."""
        edges = np.asarray(edges, np.float64)
        layout = layout or layout_of(edges)
        _check_layout(data, "numeric", layout)
        counts = _counts(data.get("counts"), len(edges) + 1)
        sums = np.asarray(data.get("sums"), dtype=np.float64)
        if sums.shape != counts.shape or not np.all(np.isfinite(sums)):
            raise InvalidData("a numeric sketch's sums must be one finite number per bin")
        sketch = cls(edges, counts, sums, _count(data.get("missing")))
        sketch._layout = layout
        return sketch


class CategoricalSketch:
    """Counts of a category column's values: one per tracked category, then "other"."""

    __slots__ = ("categories", "counts", "index", "missing")

    def __init__(
        self, categories: Sequence[str], counts: Array | None = None, missing: int = 0
    ) -> None:
        self.categories = tuple(categories)
        self.index = {name: i for i, name in enumerate(self.categories)}
        size = len(self.categories) + 1
        self.counts = np.zeros(size, np.int64) if counts is None else np.asarray(counts, np.int64)
        self.missing = missing

    @classmethod
    def of(cls, categories: Sequence[str], values: Any) -> CategoricalSketch:
        sketch = cls(categories)
        sketch.update(values)
        return sketch

    @property
    def rows(self) -> int:
        return int(self.counts.sum())

    @property
    def layout(self) -> str:
        return layout_of(np.array(self.categories, dtype=np.str_))

    def update(self, values: Any) -> None:
        """Values are compared as ``str(value)``; None and NaN are missing."""
        if isinstance(values, np.ndarray) and values.dtype.kind in "biu":
            # a classifier's labels: none missing, and no object for each
            found, tally = np.unique(values.reshape(-1), return_counts=True)
            keys, missing = [str(key) for key in found.tolist()], 0
        else:
            data = np.asarray(values, dtype=object).reshape(-1)
            absent = _is_missing(data).astype(bool)
            found, inverse = np.unique(data[~absent].astype(str), return_inverse=True)
            keys, missing = found.tolist(), int(absent.sum())
            tally = np.bincount(inverse.reshape(-1), minlength=len(keys))
        other = len(self.categories)
        codes = np.array([self.index.get(key, other) for key in keys], dtype=np.int64)
        self.counts += np.bincount(codes, weights=tally, minlength=len(self.counts)).astype(
            np.int64
        )
        self.missing += missing

    def merge(self, other: CategoricalSketch) -> CategoricalSketch:
        if other.categories != self.categories:
            raise InvalidData("categorical sketches over different categories do not merge")
        return CategoricalSketch(
            self.categories, self.counts + other.counts, self.missing + other.missing
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "categorical",
            "layout": self.layout,
            "counts": self.counts.tolist(),
            "missing": self.missing,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], categories: Sequence[str]) -> CategoricalSketch:
        _check_layout(data, "categorical", layout_of(np.array(tuple(categories), np.str_)))
        counts = _counts(data.get("counts"), len(categories) + 1)
        return cls(categories, counts, _count(data.get("missing")))


def layout_of(edges_or_categories: Array) -> str:
    """A short digest naming a sketch's bins, so sketches on other bins are refused."""
    data = edges_or_categories
    raw = data.astype("<f8").tobytes() if data.dtype.kind == "f" else "\x00".join(data).encode()
    return hashlib.sha256(raw).hexdigest()[:16]


def _as_numbers(values: Any) -> Array:
    data = np.asarray(values)
    if data.dtype == object:
        data = np.where(_is_missing(data).astype(bool), np.nan, data)
    return np.asarray(data, dtype=np.float64).reshape(-1)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


_is_missing = np.frompyfunc(_missing, 1, 1)


def _check_layout(data: Mapping[str, Any], kind: str, layout: str) -> None:
    if data.get("kind") != kind:
        raise InvalidData(f"not a {kind} sketch (kind {data.get('kind')!r})")
    if data.get("layout") != layout:
        raise InvalidData(
            f"the {kind} sketch was made on other bins (layout {data.get('layout')!r}, "
            f"these are {layout!r})"
        )


def _counts(value: Any, size: int) -> Array:
    if isinstance(value, np.ndarray) and value.dtype.kind in "iu":  # whole already (unpacked)
        if value.shape != (size,) or not np.all(value >= 0):
            raise InvalidData(f"a sketch's counts must be {size} whole numbers, none negative")
        return value.astype(np.int64, copy=False)
    counts = np.asarray(value if value is not None else [], dtype=np.float64)
    if counts.shape != (size,) or not np.all((counts >= 0) & (counts == np.round(counts))):
        raise InvalidData(f"a sketch's counts must be {size} whole numbers, none negative")
    return counts.astype(np.int64)


def _count(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InvalidData(f"a sketch's missing count must be a whole number, not {value!r}")
    return value
