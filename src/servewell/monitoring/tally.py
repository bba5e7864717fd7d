"""What one slice of a group's logged rows adds up to: counts, latencies, the labelled
rows' predictions and truths, and a drift sketch per feature. Tallies merge, so the
window's figures are its slices' merged."""

from __future__ import annotations

from typing import Any

import numpy as np

from servewell.monitoring.reading import Reading
from servewell.registry.predictions import LoggedPrediction
from servewell.stats.sketch import CategoricalSketch, NumericSketch

Sketch = NumericSketch | CategoricalSketch


class Tally:
    """One slice's (or a whole window's) rows of one version and arm."""

    def __init__(self, reading: Reading) -> None:
        self.reading = reading
        self.logged = self.cached = self.labelled = self.unscored = 0
        self.first_at: float | None = None
        self.last_at: float | None = None
        self.latencies_ms: list[float] = []
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
        self.latencies_ms.extend(row.latency_ms for row in rows)
        answered = [row for row in rows if not row.cached]
        self.cached += len(rows) - len(answered)
        for row in rows:
            if row.label is not None:
                self.labelled += 1
                self._score(row)
        self._sketch(answered)

    def _score(self, row: LoggedPrediction) -> None:
        """A labelled row's prediction beside its truth: a one-row answer only (a label
        is one value; a cached answer has no outputs)."""
        predicted = self.reading.predictions(row.outputs)
        if len(predicted) != 1:
            self.unscored += 1
            return
        self.truth.append(row.label)
        self.predicted.append(predicted[0])
        self.probabilities.append(self.reading.probabilities(row.outputs))

    def _sketch(self, rows: list[LoggedPrediction]) -> None:
        columns = self.reading.feature_values([row.inputs for row in rows])
        for name, values in columns.items():
            self._update(name, self.sketches, values)
        if self.prediction is not None:
            predicted = [value for row in rows for value in self.reading.predictions(row.outputs)]
            self._update("prediction", {"prediction": self.prediction}, predicted)

    def _update(self, name: str, sketches: dict[str, Sketch], values: list[Any]) -> None:
        if name in self.unreadable or not values:
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
        for at in (other.first_at, other.last_at):
            if at is not None:
                self.first_at = at if self.first_at is None else min(self.first_at, at)
                self.last_at = at if self.last_at is None else max(self.last_at, at)
        self.latencies_ms.extend(other.latencies_ms)
        self.truth.extend(other.truth)
        self.predicted.extend(other.predicted)
        self.probabilities.extend(other.probabilities)
        for name, sketch in other.sketches.items():
            self.sketches[name] = _merged(self.sketches[name], sketch)
        if self.prediction is not None and other.prediction is not None:
            self.prediction = _merged(self.prediction, other.prediction)
        self.unreadable.update(other.unreadable)

    def latency_percentiles(self) -> dict[str, float] | None:
        if not self.latencies_ms:
            return None
        values = np.asarray(self.latencies_ms, dtype=np.float64)
        p50, p95, p99 = np.percentile(values, [50, 95, 99])
        return {"p50": float(p50), "p95": float(p95), "p99": float(p99), "max": float(values.max())}


def _merged(left: Sketch, right: Sketch) -> Sketch:
    if isinstance(left, NumericSketch) and isinstance(right, NumericSketch):
        return left.merge(right)
    assert isinstance(left, CategoricalSketch)
    assert isinstance(right, CategoricalSketch)
    return left.merge(right)
