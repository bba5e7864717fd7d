"""Window sketches fed from the prediction log's batches, in its flush thread.

After a batch's rows are written, :meth:`PredictionSketcher.write` adds the batch to
the buckets it falls in (``monitoring.sketch_bucket_s`` of wall-clock time, per model,
version and arm): a count, the latencies' quantile sketch, and each judged feature's and
the predictions' histogram on the version's reference bins
(:mod:`servewell.serving.prediction_reading`), from the requests' own arrays, one
vectorised update per feature per group of the batch; nothing runs on the request path.
The arrays are the records' (``Logged.input_arrays`` and ``output_arrays``, read as
their JSON reads: ``prediction_rows.as_logged``); a row without them has its JSON read
back, and only when its version is sketched.
Each open bucket is saved (replacing its earlier state) under a writer id of its own,
so replicas and worker processes never share a row (``registry/sketches.py``).

A bucket is let go a minute after it ends (a later record for it opens a new one,
under a new id, which merges like any other); once an hour (and at start) closed
buckets are compacted into hours and those past ``monitoring.retention_days`` pruned.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

import numpy as np
import orjson

from servewell.registry.predictions import LoggedPrediction, PredictionRow
from servewell.registry.sketches import COMPACT_S, SketchRow, SketchStore, new_writer
from servewell.serving.prediction_reading import Reading
from servewell.serving.prediction_rows import Logged
from servewell.stats.bucket import Bucket, Histogram
from servewell.stats.sketch import CategoricalSketch, NumericSketch

logger = logging.getLogger(__name__)

#: How long after its end a bucket stays open for records that arrive late.
KEEP_OPEN_S = 60.0
#: Compaction leaves the last buckets alone this long (other replicas' may be open).
COMPACT_AFTER_S = 600.0
#: How often a version without a reference profile is looked at again (one given late
#: with ``servewell profile`` is sketched from then on).
REREAD_S = 60.0

ReadingOf = Callable[[str, int], Reading]
"""A model version's reading (raises when it has none: the bucket then keeps counts
and latencies only)."""
Key = tuple[str, int, str | None, float]
"""Model, version, arm and bucket start."""


class SketchRecord(NamedTuple):
    """What a bucket needs of one logged prediction."""

    at: float
    model: str
    version: int
    arm: str | None
    latency_ms: float
    inputs: Any
    """The inputs (a mapping of arrays or lists), or their JSON text, read when sketched."""
    outputs: Any
    """The outputs, as ``inputs``; None for a response-cache hit."""

    @classmethod
    def of_row(cls, row: PredictionRow, logged: Logged | None = None) -> SketchRecord:
        """A row as the flush thread wrote it: with the record it was built from, that
        record's arrays; else (or where the record kept none) the row's JSON."""
        inputs: Any = row.inputs
        outputs: Any = None if row.cached else row.outputs
        if logged is not None:
            if logged.input_arrays is not None:
                inputs = logged.input_arrays
            if outputs is not None and logged.output_arrays is not None:
                outputs = logged.output_arrays
        values = (row.at, row.model, row.version, row.arm, row.latency_ms, inputs, outputs)
        return tuple.__new__(cls, values)

    @classmethod
    def of_logged(cls, row: LoggedPrediction) -> SketchRecord:
        """A row as a store reads it back (its JSON decoded)."""
        outputs = None if row.cached or row.outputs is None else _as_arrays(row.outputs)
        inputs = None if row.inputs is None else _as_arrays(row.inputs)
        at = row.logged_at.timestamp()
        return cls(at, row.model, row.version, row.arm, row.latency_ms, inputs, outputs)


def _values(found: Any) -> Any:
    """A record's inputs or outputs, its JSON text read (as arrays) if that is what it has."""
    return _as_arrays(orjson.loads(found)) if isinstance(found, str) else found


def _as_arrays(document: Any) -> Any:
    """A logged JSON object's values as arrays, as the readings make of them anyway: a
    batch's records then hold no lists for the garbage collector to walk (an array and a
    dict of arrays are not tracked), which was half the sketches' cost in a flush. A
    value that is no array (ragged lists) stays as it came, for the reading to refuse."""
    if not isinstance(document, dict):
        return document
    found = {}
    for name, value in document.items():
        try:
            found[name] = np.asarray(value)
        except (ValueError, TypeError):
            found[name] = value
    return found


@dataclass
class _Open:
    """A bucket held in memory, and whether it changed since it was last saved."""

    row: SketchRow
    dirty: bool = True


class PredictionSketcher:
    """The open buckets of one prediction log; used by its flush thread alone."""

    def __init__(
        self,
        store: SketchStore,
        reading_of: ReadingOf,
        bucket_s: float,
        retention_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.reading_of = reading_of
        self.bucket_s = bucket_s
        self.retention_s = retention_s
        self.clock = clock
        self.open: dict[Key, _Open] = {}
        self._readings: dict[tuple[str, int], tuple[Reading | None, float]] = {}
        """Each version's reading, and when one without a profile is looked at again."""
        self._next_tidy = self.clock() + COMPACT_S
        """When closed buckets are next compacted (an hour after start, then hourly)."""

    def write(self, rows: Sequence[PredictionRow], records: Sequence[Logged] | None = None) -> None:
        """Sketch a written batch's rows into their buckets and save them: the prediction
        log's flush consumer (``records``: the rows' own, whose arrays are read; without
        them the rows' JSON is). Never raises: a failure is logged, and the buckets are
        saved again at the next batch."""
        try:
            if records is None:
                self.add(SketchRecord.of_row(row) for row in rows)
            else:
                self.add(map(SketchRecord.of_row, rows, records))
            self.save()
            if self.clock() >= self._next_tidy:
                self._next_tidy = self.clock() + COMPACT_S
                self.tidy()
        except Exception:
            logger.warning("could not save the prediction log's window sketches", exc_info=True)

    def add(self, records: Iterable[SketchRecord]) -> None:
        """The records in their buckets (in memory)."""
        groups: dict[Key, list[SketchRecord]] = {}
        size, floor = self.bucket_s, math.floor
        for record in records:  # once per row: lookups hoisted
            key = (record.model, record.version, record.arm, floor(record.at / size) * size)
            group = groups.get(key)
            if group is None:
                groups[key] = [record]
            else:
                group.append(record)
        for key, group in groups.items():
            bucket = self.bucket_of(key[0], key[1], group)
            found = self.open.get(key)
            if found is None:
                model, version, arm, start = key
                row = SketchRow(new_writer(), model, version, arm, start, start + size, bucket)
                self.open[key] = _Open(row)
            else:
                found.row = replace(found.row, bucket=found.row.bucket.merge(bucket))
                found.dirty = True

    def bucket_of(self, model: str, version: int, records: Sequence[SketchRecord]) -> Bucket:
        """What ``records`` (of one model version) add up to."""
        return bucket_of(records, self._reading(model, version))

    def save(self) -> None:
        """Save every bucket changed since it was last saved; let closed ones go."""
        dirty = [found for found in self.open.values() if found.dirty]
        self.store.save([found.row for found in dirty])
        for found in dirty:
            found.dirty = False
        now = self.clock()
        for key, found in list(self.open.items()):
            if found.row.ends_at + KEEP_OPEN_S < now:
                del self.open[key]

    def tidy(self) -> None:
        """Compact closed buckets into hours; prune those past retention."""
        now = self.clock()
        merged = self.store.compact(now - COMPACT_AFTER_S)
        gone = self.store.prune(now - self.retention_s)
        if merged or gone:
            logger.info("window sketches: %d compacted into hours, %d pruned", merged, gone)

    def _reading(self, model: str, version: int) -> Reading | None:
        key = (model, version)
        found = self._readings.get(key)
        if found is not None and self.clock() < found[1]:
            return found[0]
        try:
            reading: Reading | None = self.reading_of(model, version)
        except Exception:
            logger.warning("no drift reference for %s@%d", model, version, exc_info=True)
            reading = None
        judged = reading is not None and (reading.references or reading.prediction_reference)
        self._readings[key] = (reading, math.inf if judged else self.clock() + REREAD_S)
        return reading


def bucket_of(records: Sequence[SketchRecord], reading: Reading | None) -> Bucket:
    """What ``records`` (of one model version, read by ``reading``: None keeps counts and
    latencies only) add up to: the flush thread's and the backfill's one way."""
    at = np.fromiter((r.at for r in records), np.float64, len(records))
    bucket = Bucket(len(records), first_at=float(at.min()), last_at=float(at.max()))
    bucket.latency.update(np.fromiter((r.latency_ms for r in records), np.float64))
    answers = [r for r in records if r.outputs is not None]
    bucket.cached = len(records) - len(answers)
    if reading is None:
        return bucket
    inputs = [_values(r.inputs) for r in answers] if reading.references else []
    columns, bucket.unreadable = reading.feature_columns(inputs)
    for name, values in columns.items():
        sketch = reading.references[name].new_sketch()
        if _sketched(sketch, values, name, bucket.unreadable):
            bucket.features[name] = Histogram.of(sketch)
    reference = reading.prediction_reference
    if reference is not None:
        sketch = reference.new_sketch()
        values = reading.prediction_column([_values(r.outputs) for r in answers])
        if _sketched(sketch, values, "prediction", {}):
            bucket.prediction = Histogram.of(sketch)
    return bucket


def _sketched(
    sketch: NumericSketch | CategoricalSketch, values: Any, name: str, problems: dict[str, str]
) -> bool:
    try:
        sketch.update(values)
    except (ValueError, TypeError) as exc:
        problems[name] = f"logged values are not numbers ({exc})"
        return False
    return True
