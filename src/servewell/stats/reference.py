"""The drift reference of one feature: what a version's profile keeps of its training
values so a window's sketch can be judged against them, and how it is read back.

A number column keeps its PSI bin edges (:data:`PSI_BINS` quantile bins, frequent
values alone) and a :class:`~servewell.stats.sketch.NumericSketch` of its training values
on fine edges (:data:`FINE_BINS` quantiles, the PSI edges among them, frequent values
alone); a category column keeps its :data:`TOP_CATEGORIES` most common values and a
:class:`~servewell.stats.sketch.CategoricalSketch` of its training values. Windows are
sketched on the same edges or categories (:meth:`new_sketch`), and merged freely.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from servewell.errors import InvalidData
from servewell.stats.binning import bin_edges, bin_of
from servewell.stats.drift import (
    DriftTest,
    FeatureDrift,
    Thresholds,
    chi_square,
    ks,
    psi,
    wasserstein,
)
from servewell.stats.sketch import CategoricalSketch, NumericSketch

Array = np.ndarray[Any, Any]

#: Quantile bins of a number's PSI (deciles).
PSI_BINS = 10
#: Quantile bins of a number's fine sketch: the KS statistic is read at their edges.
FINE_BINS = 2000
#: Categories a category column tracks; the rest are counted together as "other".
TOP_CATEGORIES = 50


@dataclass(frozen=True)
class NumericReference:
    """A number column's training values, as drift compares a window with them."""

    name: str
    psi_edges: Array
    sketch: NumericSketch
    std: float

    def new_sketch(self) -> NumericSketch:
        return NumericSketch(self.sketch.edges)

    def sketch_from_dict(self, data: Mapping[str, Any]) -> NumericSketch:
        return NumericSketch.from_dict(data, self.sketch.edges, self.sketch.layout)

    def psi_counts(self, sketch: NumericSketch) -> Array:
        """The sketch's counts summed over the PSI bins (every fine bin lies in one)."""
        fine_starts = bin_of(self.psi_edges, sketch.edges)
        coarse = np.concatenate([[0], fine_starts])
        counts: Array = np.bincount(
            coarse, weights=sketch.counts, minlength=len(self.psi_edges) + 1
        )
        return counts

    def drift(
        self, window: NumericSketch, thresholds: Thresholds | None = None, *, psi_only: bool = False
    ) -> FeatureDrift:
        """Every test of the window (``psi_only``: PSI alone, as a slice is plotted by)."""
        limits = thresholds or Thresholds()
        if window.layout != self.sketch.layout:
            raise InvalidData(f"the window of '{self.name}' was sketched on other bins")
        if window.rows == 0 or self.sketch.rows == 0:
            return FeatureDrift(self.name, "numeric", window.rows, window.missing)
        edges = tuple(self.psi_edges.tolist())
        found = psi(
            self.psi_counts(self.sketch), self.psi_counts(window), threshold=limits.psi, bins=edges
        )
        tests: tuple[DriftTest, ...] = (found,)
        if not psi_only:
            tests += (
                ks(self.sketch, window, alpha=limits.ks),
                wasserstein(self.sketch, window, std=self.std, threshold=limits.wasserstein),
            )
        return FeatureDrift(self.name, "numeric", window.rows, window.missing, tests)


@dataclass(frozen=True)
class CategoricalReference:
    """A category column's training values, as drift compares a window with them."""

    name: str
    sketch: CategoricalSketch

    @property
    def categories(self) -> tuple[str, ...]:
        return self.sketch.categories

    def new_sketch(self) -> CategoricalSketch:
        return CategoricalSketch(self.categories)

    def sketch_from_dict(self, data: Mapping[str, Any]) -> CategoricalSketch:
        return CategoricalSketch.from_dict(data, self.categories)

    def drift(
        self,
        window: CategoricalSketch,
        thresholds: Thresholds | None = None,
        *,
        psi_only: bool = False,
    ) -> FeatureDrift:
        """Every test of the window (``psi_only``: PSI alone)."""
        limits = thresholds or Thresholds()
        if window.categories != self.categories:
            raise InvalidData(f"the window of '{self.name}' counts other categories")
        if window.rows == 0 or self.sketch.rows == 0:
            return FeatureDrift(self.name, "categorical", window.rows, window.missing)
        # As Evidently's keys: the categories either side has (then "other").
        seen = (self.sketch.counts > 0) | (window.counts > 0)
        names = (*self.categories, "other")
        bins = tuple(name for name, kept in zip(names, seen, strict=True) if kept)
        ref, cur = self.sketch.counts[seen], window.counts[seen]
        tests: tuple[DriftTest, ...] = (psi(ref, cur, threshold=limits.psi, bins=bins),)
        if not psi_only:
            tests += (chi_square(ref, cur, alpha=limits.chi_square, bins=bins),)
        return FeatureDrift(self.name, "categorical", window.rows, window.missing, tests)


Reference = NumericReference | CategoricalReference


def numeric_reference_fields(values: Array) -> dict[str, Any]:
    """What a profile keeps of a number column for drift (``values``: every value,
    missing ones included)."""
    numbers = np.asarray(values, dtype=np.float64).reshape(-1)
    finite = numbers[np.isfinite(numbers)]
    psi_edges = bin_edges(finite, PSI_BINS)
    edges = np.unique(np.concatenate([bin_edges(finite, FINE_BINS), psi_edges]))
    sketch = NumericSketch.of(edges, numbers)
    return {"psi_edges": psi_edges.tolist(), "edges": edges.tolist(), "sketch": sketch.to_dict()}


def categorical_reference_fields(values: Array) -> dict[str, Any]:
    """What a profile keeps of a category column for drift: its most common values
    (ties in sorted order) and their counts."""
    data = np.asarray(values, dtype=object).reshape(-1)
    present = np.array([str(v) for v in data if not _missing(v)], dtype=object)
    keys, counts = np.unique(present, return_counts=True)
    top = [str(keys[i]) for i in np.argsort(-counts, kind="stable")[:TOP_CATEGORIES]]
    return {"categories": top, "sketch": CategoricalSketch.of(top, data).to_dict()}


def reference_of(name: str, entry: Mapping[str, Any]) -> Reference:
    """The drift reference of one column's profile entry (``features.<name>``,
    ``prediction`` or ``score``)."""
    kind, fields = entry.get("kind"), entry.get("drift")
    if kind == "numeric":
        if not isinstance(fields, Mapping):
            raise InvalidData(
                f"the reference profile of '{name}' has no drift bins (it was profiled "
                "before they were kept): profile the training data again"
            )
        edges = np.asarray(fields["edges"], np.float64)
        sketch = NumericSketch.from_dict(fields["sketch"], edges)
        psi_edges = np.asarray(fields["psi_edges"], np.float64)
        return NumericReference(name, psi_edges, sketch, float(entry.get("std", 0.0)))
    if kind == "categorical":
        if not isinstance(fields, Mapping):
            return CategoricalReference(name, _sketch_from_frequencies(entry))
        categories = [str(c) for c in fields["categories"]]
        return CategoricalReference(name, CategoricalSketch.from_dict(fields["sketch"], categories))
    raise InvalidData(f"the reference profile of '{name}' is of kind {kind!r}: no drift test")


def _sketch_from_frequencies(entry: Mapping[str, Any]) -> CategoricalSketch:
    """A profile from before drift sketches: counts from its shares of present values."""
    present = int(entry.get("count", 0)) - int(entry.get("missing", 0))
    frequencies = entry.get("frequencies") or {}
    counts = [round(float(share) * present) for share in frequencies.values()]
    other = max(0, present - sum(counts))
    return CategoricalSketch(
        [str(c) for c in frequencies], np.array([*counts, other]), int(entry.get("missing", 0))
    )


def references(profile: Mapping[str, Any]) -> tuple[dict[str, Reference], dict[str, str]]:
    """The drift reference of every feature of a profile, and why the others have none
    (a datetime, or a number profiled before drift bins were kept)."""
    found: dict[str, Reference] = {}
    missing: dict[str, str] = {}
    for name, entry in (profile.get("features") or {}).items():
        try:
            found[name] = reference_of(name, entry)
        except InvalidData as exc:
            missing[name] = str(exc)
    return found, missing


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)
