"""A time window's tallies from the stored window sketches: every bucket that overlaps
the window (``registry/sketches.py``), each in the slice holding its middle, merged per
version, arm and slice (as packed histograms, then one reference sketch a slice), so a
day costs O(buckets x bins) and not a rescan of a day's rows.
Quality still reads rows, the labelled ones alone (labels arrive after the buckets were
written), from the first bucket's start, so coverage counts the same rows the buckets do.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from servewell.monitoring.tally import Tally
from servewell.monitoring.window import Span
from servewell.registry import RegistryAccess
from servewell.registry.prediction_store import open_prediction_store
from servewell.registry.sketches import SketchStore
from servewell.serving.prediction_reading import Readings
from servewell.stats.bucket import Bucket

Slices = dict[tuple[int, str | None], list[Tally]]
"""Each version and arm's tally per slice."""


def sketched_slices(
    access: RegistryAccess,
    readings: Readings,
    name: str,
    span: Span,
    version: int | None,
    progress: Callable[[int], None] | None = None,
) -> Slices:
    """The window's tallies from its buckets, then its labelled rows."""
    assert span.start is not None, "a window of rows is read from rows"
    slices: Slices = {}
    since = span.start.timestamp()
    merged: dict[tuple[int, str | None, int, tuple[Any, ...]], Bucket] = {}
    for row in SketchStore(access.registry).window(name, since=since, version=version):
        part = span.slice_of((row.starts_at + row.ends_at) / 2, 0)
        key = (row.version, row.arm, part, _bins(row.bucket))
        merged[key] = merged[key].merge(row.bucket) if key in merged else row.bucket
        since = min(since, row.starts_at)
        if progress is not None:
            progress(row.bucket.logged)
    for (number, arm, part, _), bucket in merged.items():
        tallies(slices, readings, name, span, number, arm)[part].add_bucket(bucket)
    labelled = open_prediction_store(access).labelled(
        name, datetime.fromtimestamp(since, UTC), version=version
    )
    for page in labelled:
        for found in page:
            part = span.slice_of(found.logged_at.timestamp(), 0)
            group = tallies(slices, readings, name, span, found.version, found.arm)
            group[part].add_labels([found])
    return slices


def _bins(bucket: Bucket) -> tuple[Any, ...]:
    """The bins a bucket's histograms are on: buckets on the same ones merge as they are,
    before one reference sketch is made of each slice's (the reference checks them)."""
    features = tuple((name, found.layout) for name, found in bucket.features.items())
    return features, None if bucket.prediction is None else bucket.prediction.layout


def tallies(
    slices: Slices, readings: Readings, name: str, span: Span, version: int, arm: str | None
) -> list[Tally]:
    """The slices' tallies of one version and arm, made at its first row or bucket."""
    key = (version, arm)
    if key not in slices:
        reading = readings.of(name, version)
        slices[key] = [Tally(reading) for _ in range(span.slices)]
    return slices[key]
