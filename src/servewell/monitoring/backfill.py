"""Window sketches rebuilt from logged rows: for rows logged before the window sketches
existed (migration 0009), and for a version whose reference profile was given after its
rows were logged (``servewell profile``), so a time window is judged from its sketches,
without ``--rescan`` (``servewell monitor NAME --backfill``).

The log is walked a span at a time, oldest first: whole hours up to the last one closed
ten minutes ago (compaction's margin), then the sketch buckets after it up to two minutes
ago (a server lets a bucket go a minute after it ends). For each span the rows are read
(a page at a time) and sketched as the flush thread sketches them
(:func:`~servewell.serving.prediction_sketches.bucket_of`); the span's stored buckets are
merged and compared: equal, nothing is written (a second run, or an interrupted one run
again, rewrites nothing done); else they are replaced by the rebuilt ones in one
transaction (``SketchStore.replace``), so a bucket the live sketcher wrote is never
counted twice, and a compaction that merged some of them meanwhile makes the span be
read again. Spans still open are the live sketcher's alone.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from servewell.errors import Conflict, InvalidData
from servewell.registry import RegistryAccess
from servewell.registry.prediction_store import PredictionStore, open_prediction_store
from servewell.registry.predictions import SCAN_ROWS
from servewell.registry.sketches import COMPACT_S, SketchRow, SketchStore, new_writer
from servewell.serving.prediction_reading import Readings
from servewell.serving.prediction_sketches import (
    COMPACT_AFTER_S,
    KEEP_OPEN_S,
    Gathered,
    bucket_of,
)
from servewell.stats.bucket import Bucket, Histogram

#: Spans ending later than this long ago are left to the live sketcher.
OPEN_MARGIN_S = 2 * KEEP_OPEN_S
#: Tries of a span whose stored buckets a compaction changed meanwhile.
ATTEMPTS = 3

Group = tuple[int, str | None]
"""A version and arm."""
Progress = Callable[[int, int, int], None]
"""Spans done, spans in all, rows read so far."""


@dataclass(frozen=True, slots=True)
class Backfilled:
    """What a backfill did."""

    spans: int
    """Spans of time looked at (hours, then the last hour's buckets)."""
    rebuilt: int
    """Spans whose stored sketches differed from their rows' and were replaced."""
    rows: int
    """Logged rows read."""

    def to_dict(self) -> dict[str, int]:
        return {"spans": self.spans, "rebuilt": self.rebuilt, "rows": self.rows}


def backfill_sketches(
    access: RegistryAccess,
    name: str,
    *,
    version: int | None = None,
    progress: Progress | None = None,
    clock: Callable[[], float] = time.time,
) -> Backfilled:
    """Make ``name``'s stored window sketches (``version``'s alone when given) equal to
    its logged rows', span by span, oldest first."""
    store = open_prediction_store(access)
    sketches = SketchStore(access.registry)
    readings = Readings(access)
    bucket_s = access.settings.monitoring.sketch_bucket_s
    spans = list(_spans(_oldest(store, name, version), clock(), bucket_s))
    rebuilt = read = 0
    for done, (start, end) in enumerate(spans, 1):
        for attempt in range(1, ATTEMPTS + 1):
            stored = sketches.starting(name, start, end, version=version)
            built, rows = _rebuilt(store, readings, name, version, start, end)
            if _merged([row for _, row in stored]) == _comparable(built):
                break
            try:
                sketches.replace([i for i, _ in stored], _rows(name, start, end, built))
            except Conflict:
                if attempt == ATTEMPTS:
                    raise
                continue
            rebuilt += 1
            break
        read += rows
        if progress is not None:
            progress(done, len(spans), read)
    return Backfilled(len(spans), rebuilt, read)


def _oldest(store: PredictionStore, name: str, version: int | None) -> float | None:
    for page in store.scan(name, version=version, page_rows=1):
        return page[0].logged_at.timestamp()
    return None


def _spans(oldest: float | None, now: float, bucket_s: float) -> Iterator[tuple[float, float]]:
    """Whole hours from ``oldest``'s to the last closed ``COMPACT_AFTER_S`` ago, then
    buckets up to the last closed ``OPEN_MARGIN_S`` ago."""
    if oldest is None:
        return
    start = oldest // COMPACT_S * COMPACT_S
    hours_end = (now - COMPACT_AFTER_S) // COMPACT_S * COMPACT_S
    while start + COMPACT_S <= hours_end:
        yield start, start + COMPACT_S
        start += COMPACT_S
    start = max(start, math.floor(oldest / bucket_s) * bucket_s)
    while start + bucket_s <= now - OPEN_MARGIN_S:
        yield start, start + bucket_s
        start += bucket_s


def _rebuilt(
    store: PredictionStore,
    readings: Readings,
    name: str,
    version: int | None,
    start: float,
    end: float,
) -> tuple[dict[Group, Bucket], int]:
    """The rows logged in ``[start, end)``, sketched per version and arm, a page at a
    time; and how many there were."""
    built: dict[Group, Bucket] = {}
    read = 0
    since = datetime.fromtimestamp(start, UTC)
    page_rows = SCAN_ROWS if end - start >= COMPACT_S else SCAN_ROWS // 5  # a bucket's
    for page in store.scan(name, since=since, version=version, page_rows=page_rows):
        groups: dict[Group, Gathered] = {}
        for row in page:
            if row.logged_at.timestamp() >= end:
                break
            key = (row.version, row.arm)
            group = groups.get(key)
            if group is None:
                group = groups[key] = Gathered()
            group.add_logged(row)
        for key, group in groups.items():
            bucket = bucket_of(group, readings.of(name, key[0]))
            built[key] = built[key].merge(bucket) if key in built else bucket
            read += len(group.at)
        if page[-1].logged_at.timestamp() >= end:
            break
    return built, read


def _rows(name: str, start: float, end: float, built: dict[Group, Bucket]) -> list[SketchRow]:
    return [
        SketchRow(new_writer(), name, version, arm, start, end, bucket)
        for (version, arm), bucket in built.items()
    ]


def _merged(stored: list[SketchRow]) -> dict[Group, tuple[object, ...]] | None:
    """The stored buckets' figures per version and arm; None when some are on other bins
    than others (sketched against an earlier profile): they are rebuilt."""
    groups: dict[Group, Bucket] = {}
    for row in stored:
        key = (row.version, row.arm)
        try:
            groups[key] = groups[key].merge(row.bucket) if key in groups else row.bucket
        except InvalidData:
            return None
    return _comparable(groups)


def _comparable(groups: dict[Group, Bucket]) -> dict[Group, tuple[object, ...]]:
    """Each bucket as the figures a window reads from it (sums rounded: merged in
    another order they differ in the last bits)."""
    return {key: _figures(bucket) for key, bucket in groups.items()}


def _figures(bucket: Bucket) -> tuple[object, ...]:
    latency = bucket.latency
    histograms = sorted((name, _histogram(found)) for name, found in bucket.features.items())
    prediction = None if bucket.prediction is None else _histogram(bucket.prediction)
    return (
        bucket.logged,
        bucket.cached,
        bucket.first_at,
        bucket.last_at,
        tuple(np.flatnonzero(latency.counts)),
        tuple(latency.counts[latency.counts != 0]),
        latency.low,
        latency.high,
        tuple(histograms),
        prediction,
        tuple(sorted(bucket.unreadable.items())),
    )


def _histogram(found: Histogram) -> tuple[object, ...]:
    sums = None if found.sums is None else tuple(np.round(found.sums, 6))
    return (found.kind, found.layout, tuple(found.counts), sums, found.missing)
