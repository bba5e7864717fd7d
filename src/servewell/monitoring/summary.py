"""A report's figures per version and arm: the window's, and each slice's over time.

Everything the table, ``--json`` and the HTML page show comes from here, so the three
agree: :meth:`GroupReport.to_dict` is the JSON, drift tests with their bin edges.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from servewell.monitoring.quality import headline, quality
from servewell.monitoring.tally import Sketch, Tally
from servewell.stats.drift import FeatureDrift
from servewell.stats.reference import CategoricalReference, NumericReference, Reference

#: What the log does not hold, said wherever errors would be shown.
ERRORS_NOT_LOGGED = (
    "errors are not logged (only answers are): see servewell_requests_total by status "
    "and servewell_errors_total by code on /metrics"
)

#: Fewest present values a slice's PSI is given for: on deciles, fewer leave bins
#: nearly empty and PSI reads noise as drift (the whole window's PSI always is).
SLICE_PSI_ROWS = 100


@dataclass
class GroupReport:
    """One version (and arm) over the window."""

    version: int
    arm: str | None
    window: Tally
    slices: list[Tally]
    quality: dict[str, Any] | None = None
    drift: list[FeatureDrift] = field(default_factory=list)
    prediction_drift: FeatureDrift | None = None
    slice_figures: list[dict[str, Any]] = field(default_factory=list)
    model: str = "NAME"
    """The model's name, as the notes say it (``NAME`` when not given)."""

    @property
    def label_coverage(self) -> float:
        return self.window.labelled / self.window.logged if self.window.logged else 0.0

    @property
    def not_judged(self) -> dict[str, str]:
        return {**self.window.reading.not_judged, **self.window.unreadable}

    @property
    def quality_note(self) -> str | None:
        if self.quality is not None:
            return None
        if self.window.reading.task is None:
            return "the model's outputs name no prediction (label or variable): no quality"
        if not self.window.labelled:
            return (
                f"no labels for this window: send them with POST /v1/models/{self.model}"
                f"/feedback or servewell feedback {self.model} labels.csv"
            )
        return f"{self.window.labelled} label(s), none on a one-row answer: nothing to score"

    def to_dict(self) -> dict[str, Any]:
        tally = self.window
        return {
            "version": self.version,
            "arm": self.arm,
            "first_at": _iso(tally.first_at),
            "last_at": _iso(tally.last_at),
            "logged": tally.logged,
            "cached": tally.cached,
            "labelled": tally.labelled,
            "label_coverage": self.label_coverage,
            "unscored": tally.unscored,
            "quality": self.quality,
            "quality_note": self.quality_note,
            "latency_ms": tally.latency_percentiles(),
            "errors": ERRORS_NOT_LOGGED,
            "drift": {
                "note": tally.reading.note,
                "features": [found.to_dict() for found in self.drift],
                "not_judged": self.not_judged,
                "prediction": None
                if self.prediction_drift is None
                else self.prediction_drift.to_dict(),
                "prediction_distribution": prediction_distribution(tally),
            },
            "slices": self.slice_figures,
        }


def summarise(
    version: int, arm: str | None, slices: list[Tally], model: str = "NAME"
) -> GroupReport:
    """``model``'s group's report from its slices (the window is their merge)."""
    window = Tally(slices[0].reading)
    for part in slices:
        window.merge_in(part)
    report = GroupReport(version, arm, window, slices, quality(window), model=model)
    report.drift = feature_drift(window)
    report.prediction_drift = _prediction_drift(window)
    report.slice_figures = [_slice_figures(part) for part in slices if part.logged]
    return report


def feature_drift(tally: Tally, *, psi_only: bool = False) -> list[FeatureDrift]:
    """Every judged feature's tests on the tally's sketches (``psi_only``: PSI alone)."""
    found = []
    for name, reference in tally.reading.references.items():
        if name not in tally.unreadable:
            found.append(_drift(reference, tally.sketches[name], psi_only))
    return found


def _prediction_drift(tally: Tally, *, psi_only: bool = False) -> FeatureDrift | None:
    reference = tally.reading.prediction_reference
    if reference is None or tally.prediction is None:
        return None
    return _drift(reference, tally.prediction, psi_only)


def _drift(reference: Reference, sketch: Sketch, psi_only: bool) -> FeatureDrift:
    # a reference makes its own sketches
    return reference.drift(sketch, psi_only=psi_only)  # type: ignore[arg-type]


def _slice_figures(tally: Tally) -> dict[str, Any]:
    metric, value = headline(quality(tally))
    prediction = _prediction_drift(tally, psi_only=True)
    return {
        "first_at": _iso(tally.first_at),
        "last_at": _iso(tally.last_at),
        "logged": tally.logged,
        "labelled": tally.labelled,
        "metric": metric,
        "value": value,
        "psi": {found.name: _slice_psi(found) for found in feature_drift(tally, psi_only=True)},
        "prediction_psi": None if prediction is None else _slice_psi(prediction),
        "latency_ms": tally.latency_percentiles(),
    }


def _slice_psi(found: FeatureDrift) -> float | None:
    return found.psi if found.rows >= SLICE_PSI_ROWS else None


def prediction_distribution(tally: Tally) -> dict[str, Any] | None:
    """The window's predictions against the reference's, as shares per bin (the
    reference's categories, or its PSI bins of a number)."""
    reference, sketch = tally.reading.prediction_reference, tally.prediction
    if reference is None or sketch is None or not sketch.rows:
        return None
    if isinstance(reference, CategoricalReference):
        bins = [*reference.categories, "other"]
        ref_counts, counts = reference.sketch.counts, sketch.counts
    else:
        assert isinstance(reference, NumericReference)
        edges = [f"{edge:.4g}" for edge in reference.psi_edges]
        bins = [f"< {edges[0]}"] if edges else ["all"]
        bins += [f"{low}-{high}" for low, high in itertools.pairwise(edges)]
        bins += [f">= {edges[-1]}"] if edges else []
        ref_counts = reference.psi_counts(reference.sketch)
        counts = reference.psi_counts(sketch)  # type: ignore[arg-type]
    kept = (np.asarray(ref_counts) > 0) | (np.asarray(counts) > 0)
    return {
        "bins": [name for name, keep in zip(bins, kept, strict=True) if keep],
        "reference": _shares(ref_counts, kept),
        "window": _shares(counts, kept),
    }


def _shares(counts: Any, kept: Any) -> list[float]:
    array = np.asarray(counts, dtype=np.float64)
    total = array.sum() or 1.0
    shares: list[float] = (array[kept] / total).tolist()
    return shares


def _iso(at: float | None) -> str | None:
    return None if at is None else datetime.fromtimestamp(at, UTC).isoformat()
