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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from itertools import repeat
from typing import Any

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


@dataclass(slots=True)
class Gathered:
    """The records of one bucket's group (model, version, arm) as the columns a bucket
    is made of: the flush thread appends to them in its one pass over a batch
    (:meth:`PredictionSketcher.add`), the backfill by :meth:`add_logged`."""

    at: list[float] = field(default_factory=list)
    latency_ms: list[float] = field(default_factory=list)
    inputs: list[Any] = field(default_factory=list)
    """The answered records' inputs (a mapping of arrays or lists, or its JSON text, read
    when sketched; None when none is logged), in order."""
    outputs: list[Any] = field(default_factory=list)
    """The answered records' outputs, as ``inputs``; a cache hit has none."""

    def add_logged(self, row: LoggedPrediction) -> None:
        """A row as a store reads it back (its JSON decoded)."""
        self.at.append(row.logged_at.timestamp())
        self.latency_ms.append(row.latency_ms)
        if not row.cached and row.outputs is not None:
            self.inputs.append(None if row.inputs is None else _as_arrays(row.inputs))
            self.outputs.append(_as_arrays(row.outputs))


def _read(found: list[Any]) -> list[Any]:
    """Records' inputs or outputs, each one's JSON text read (as arrays) if that is what
    it has (once per row: no call for those that are arrays already)."""
    return [_as_arrays(orjson.loads(one)) if type(one) is str else one for one in found]


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
            self.add(rows, records)
            self.save()
            if self.clock() >= self._next_tidy:
                self._next_tidy = self.clock() + COMPACT_S
                self.tidy()
        except Exception:
            logger.warning("could not save the prediction log's window sketches", exc_info=True)

    def add(self, rows: Sequence[PredictionRow], records: Sequence[Logged] | None = None) -> None:
        """A written batch's rows in their buckets (in memory); see :func:`gather`."""
        groups = gather(rows, records, self.bucket_s)
        for key, group in groups.items():
            bucket = self.bucket_of(key[0], key[1], group)
            found = self.open.get(key)
            if found is None:
                model, version, arm, start = key
                end = start + self.bucket_s
                row = SketchRow(new_writer(), model, version, arm, start, end, bucket)
                self.open[key] = _Open(row)
            else:
                found.row = replace(found.row, bucket=found.row.bucket.merge(bucket))
                found.dirty = True

    def bucket_of(self, model: str, version: int, gathered: Gathered) -> Bucket:
        """What ``gathered`` (of one model version) adds up to."""
        return bucket_of(gathered, self._reading(model, version))

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


def gather(
    rows: Sequence[PredictionRow], records: Sequence[Logged] | None, bucket_s: float
) -> dict[Key, Gathered]:
    """A written batch's rows per bucket (model, version, arm and the start of their
    ``bucket_s``), as columns: with the records they were built from, those records'
    arrays where they kept them, else the rows' JSON (read when sketched)."""
    groups: dict[Key, Gathered] = {}
    floor = math.floor
    # once per row, the flush thread's hot loop: one pass, tuples unpacked, no calls
    for row, logged in zip(rows, records or repeat(None, len(rows)), strict=True):
        at, _, model, version, arm, _, latency_ms, cached, outputs_json, inputs_json = row
        key = (model, version, arm, floor(at / bucket_s) * bucket_s)
        group = groups.get(key)
        if group is None:
            group = groups[key] = Gathered()
        group.at.append(at)
        group.latency_ms.append(latency_ms)
        if cached:
            continue
        inputs: Any = inputs_json
        outputs: Any = outputs_json
        if logged is not None:
            input_arrays, output_arrays = logged[-2:]  # Logged's last two fields
            if input_arrays is not None:
                inputs = input_arrays
            if output_arrays is not None:
                outputs = output_arrays
        group.inputs.append(inputs)
        group.outputs.append(outputs)
    return groups


def bucket_of(gathered: Gathered, reading: Reading | None) -> Bucket:
    """What ``gathered`` (of one model version, read by ``reading``: None keeps counts
    and latencies only) adds up to: the flush thread's and the backfill's one way."""
    at = np.array(gathered.at, np.float64)
    bucket = Bucket(len(at), first_at=float(at.min()), last_at=float(at.max()))
    bucket.latency.update(np.array(gathered.latency_ms, np.float64))
    bucket.cached = len(at) - len(gathered.outputs)
    if reading is None:
        return bucket
    inputs = _read(gathered.inputs) if reading.references else []
    columns, bucket.unreadable = reading.feature_columns(inputs)
    for name, values in columns.items():
        sketch = reading.references[name].new_sketch()
        if _sketched(sketch, values, name, bucket.unreadable):
            bucket.features[name] = Histogram.of(sketch)
    reference = reading.prediction_reference
    if reference is not None:
        sketch = reference.new_sketch()
        values = reading.prediction_column(_read(gathered.outputs))
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
