"""What one slice of a group's logged rows adds up to: counts, a latency quantile sketch,
the labelled rows' predictions and truths, and a drift sketch per feature. Fed from rows
(:meth:`Tally.add`) or from stored buckets (:meth:`Tally.add_bucket`, then the labelled
rows alone, :meth:`Tally.add_labels`). Tallies merge, so the window's figures are its
slices' merged."""

from __future__ import annotations

import math
from typing import Any

from servewell.core.feedback import comparable_label
from servewell.errors import InvalidData
from servewell.registry.predictions import LoggedPrediction
from servewell.serving.prediction_reading import Reading
from servewell.stats.bucket import Bucket, Histogram
from servewell.stats.quantile import QuantileSketch
from servewell.stats.reference import Reference
from servewell.stats.sketch import CategoricalSketch, NumericSketch

Sketch = NumericSketch | CategoricalSketch


class Tally:
    """One slice's (or a whole window's) rows of one version and arm."""

    def __init__(self, reading: Reading) -> None:
        self.reading = reading
        self.logged = self.cached = self.labelled = self.unscored = 0
        self.first_at: float | None = None
        self.last_at: float | None = None
        self.latency = QuantileSketch()
        self.truth: list[Any] = []
        self.predicted: list[Any] = []
        self.probabilities: list[list[float] | None] = []
        self.sketches: dict[str, Sketch] = {
            name: reference.new_sketch() for name, reference in reading.references.items()
        }
        found = reading.prediction_reference
        self.prediction: Sketch | None = None if found is None else found.new_sketch()
        self.unreadable: dict[str, str] = {}
        """Features whose logged values could not be sketched, and why."""

    def add(self, rows: list[LoggedPrediction]) -> None:
        """One page's rows of this slice."""
        if not rows:
            return
        times = [row.logged_at.timestamp() for row in rows]
        self.first_at = min(times) if self.first_at is None else min(self.first_at, *times)
        self.last_at = max(times) if self.last_at is None else max(self.last_at, *times)
        self.logged += len(rows)
        self.latency.update([row.latency_ms for row in rows])
        answered = [row for row in rows if not row.cached]
        self.cached += len(rows) - len(answered)
        self.add_labels(rows)
        self._sketch(answered)

    def add_bucket(self, bucket: Bucket) -> None:
        """A stored bucket's counts, latencies and sketches (labels come from rows)."""
        self.logged += bucket.logged
        self.cached += bucket.cached
        self._seen(bucket.first_at, bucket.last_at)
        self.latency = self.latency.merge(bucket.latency)
        self.unreadable.update(bucket.unreadable)
        for name, found in bucket.features.items():
            if name in self.sketches:
                sketch = self._sketch_of(self.reading.references[name], name, found)
                if sketch is not None:
                    self.sketches[name] = _merged(self.sketches[name], sketch)
        reference = self.reading.prediction_reference
        if reference is not None and self.prediction is not None and bucket.prediction:
            sketch = self._sketch_of(reference, "prediction", bucket.prediction)
            if sketch is not None:
                self.prediction = _merged(self.prediction, sketch)

    def add_labels(self, rows: list[LoggedPrediction]) -> None:
        """The labelled ones of ``rows``, scored."""
        for row in rows:
            if row.label is not None:
                self.labelled += 1
                self._score(row)

    def _sketch_of(self, reference: Reference, name: str, found: Histogram) -> Sketch | None:
        """A stored histogram as the reference's sketch (None, and said, on other bins)."""
        try:
            sketch: Sketch = reference.sketch_from_dict(found.to_dict())
        except InvalidData as exc:
            self.unreadable[name] = f"stored sketches do not fit the reference ({exc})"
            return None
        return sketch

    def _seen(self, first: float | None, last: float | None) -> None:
        for at in (first, last):
            if at is not None and math.isfinite(at):
                self.first_at = at if self.first_at is None else min(self.first_at, at)
                self.last_at = at if self.last_at is None else max(self.last_at, at)

    def _score(self, row: LoggedPrediction) -> None:
        """A labelled row's prediction beside its truth: a one-row answer only (a label
        is one value; a cached answer has no outputs)."""
        predicted = self.reading.predictions(row.outputs)
        if len(predicted) != 1:
            self.unscored += 1
            return
        truth = comparable_label(row.label, predicted[0])
        if truth is None:  # text for numbered classes ("nan", "yes"): never comparable
            self.unscored += 1
            return
        self.truth.append(truth)
        self.predicted.append(predicted[0])
        self.probabilities.append(self.reading.probabilities(row.outputs))

    def _sketch(self, rows: list[LoggedPrediction]) -> None:
        columns, problems = self.reading.feature_columns([row.inputs for row in rows])
        self.unreadable.update(problems)
        for name, values in columns.items():
            self._update(name, self.sketches, values)
        if self.prediction is not None:
            predicted = self.reading.prediction_column([row.outputs for row in rows])
            self._update("prediction", {"prediction": self.prediction}, predicted)

    def _update(self, name: str, sketches: dict[str, Sketch], values: Any) -> None:
        if name in self.unreadable or not len(values):
            return
        try:
            sketches[name].update(values)
        except (ValueError, TypeError) as exc:
            self.unreadable[name] = f"logged values are not numbers ({exc})"

    def merge_in(self, other: Tally) -> None:
        """Add ``other``'s rows (a later slice of the same group) to this tally."""
        self.logged += other.logged
        self.cached += other.cached
        self.labelled += other.labelled
        self.unscored += other.unscored
        self._seen(other.first_at, other.last_at)
        self.latency = self.latency.merge(other.latency)
        self.truth.extend(other.truth)
        self.predicted.extend(other.predicted)
        self.probabilities.extend(other.probabilities)
        for name, sketch in other.sketches.items():
            self.sketches[name] = _merged(self.sketches[name], sketch)
        if self.prediction is not None and other.prediction is not None:
            self.prediction = _merged(self.prediction, other.prediction)
        self.unreadable.update(other.unreadable)

    def latency_percentiles(self) -> dict[str, float] | None:
        """p50, p95, p99 (to the sketch's relative error) and the exact max."""
        if not self.latency.rows:
            return None
        p50, p95, p99 = self.latency.percentiles([50, 95, 99])
        return {"p50": p50, "p95": p95, "p99": p99, "max": self.latency.high}


def _merged(left: Sketch, right: Sketch) -> Sketch:
    if isinstance(left, NumericSketch) and isinstance(right, NumericSketch):
        return left.merge(right)
    assert isinstance(left, CategoricalSketch)
    assert isinstance(right, CategoricalSketch)
    return left.merge(right)
