"""The flush thread's window sketches (SQLite and PostgreSQL): an open bucket is saved
in place as it grows; a record for a bucket let go opens another row, which a window
merges; a model without a reference keeps counts and latencies; a store that fails is
logged, never raised into the flush."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from fake_clock import FakeClock
from servewell.bootstrap import Services
from servewell.registry.predictions import PredictionRow
from servewell.registry.sketches import SketchStore
from servewell.serving.prediction_reading import Readings
from servewell.serving.prediction_sketches import KEEP_OPEN_S, PredictionSketcher
from serving_models import register_adder

T = 1_800_000_000.0  # a bucket boundary (a multiple of 60)


def _row(at: float, latency_ms: float = 2.0) -> PredictionRow:
    outputs, inputs = '{"sum": [[3.0]]}', '{"x": [[2.0]], "y": [[1.0]]}'
    return PredictionRow(at, "r", "adder", 1, None, None, latency_ms, False, outputs, inputs)


def test_buckets_grow_in_place_and_late_records_open_another_row(
    services: Services, tmp_path: Path
) -> None:
    register_adder(services, tmp_path)
    clock = FakeClock(T + 5)
    sketcher = PredictionSketcher(
        SketchStore(services.registry), Readings(services).of, 60.0, 86400.0, clock=clock
    )
    sketcher.write([_row(T + 1), _row(T + 2, 4.0)])
    sketcher.write([_row(T + 3)])
    [row] = SketchStore(services.registry).window("adder")
    assert (row.starts_at, row.ends_at, row.bucket.logged) == (T, T + 60, 3)
    assert row.bucket.features == {}  # no reference profile: counts and latencies only
    assert row.bucket.latency.high == 4.0

    clock.advance(60 + KEEP_OPEN_S + 1)
    sketcher.write([_row(T + 61)])  # saves, then lets the first bucket go
    sketcher.write([_row(T + 4)])  # late: a new row for the first bucket
    rows = SketchStore(services.registry).window("adder", since=T)
    assert sorted((r.starts_at, r.bucket.logged) for r in rows) == [(T, 1), (T, 3), (T + 60, 1)]
    assert len({r.writer for r in rows}) == 3


def test_a_failing_store_is_logged_not_raised_and_saved_later(
    services: Services, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    register_adder(services, tmp_path)
    sketcher = PredictionSketcher(
        SketchStore(services.registry), Readings(services).of, 60.0, 86400.0, clock=FakeClock(T)
    )
    hit = PredictionRow(T + 1, "r", "adder", 1, None, "k", 1.0, True, None, None)  # cache hit
    with services.registry.read() as conn:
        conn.exec_driver_sql("ALTER TABLE prediction_sketches RENAME TO gone")
    with caplog.at_level(logging.WARNING):
        sketcher.write([hit])
    assert "could not save the prediction log's window sketches" in caplog.text
    with services.registry.read() as conn:
        conn.exec_driver_sql("ALTER TABLE gone RENAME TO prediction_sketches")
    sketcher.write([hit])  # the bucket kept in memory is saved with both
    [row] = SketchStore(services.registry).window("adder")
    assert (row.bucket.logged, row.bucket.cached) == (2, 2)
