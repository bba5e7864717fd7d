"""Window sketches rebuilt from the logged rows (SQLite and PostgreSQL): rows logged
without sketches (before migration 0009) and buckets sketched before the version had a
reference profile become a window's sketches equal to its rescan; buckets the live
sketcher wrote are not counted twice; a second run rewrites nothing; spans still open
are left to the live sketcher; a server's sketcher judges a profile given late."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

import monitored_models as monitored
from servewell.bootstrap import Services, build_services
from servewell.monitoring.backfill import OPEN_MARGIN_S, backfill_sketches
from servewell.monitoring.run import monitor
from servewell.monitoring.window import Span
from servewell.registry.predictions import SqlPredictionStore
from servewell.registry.sketches import SketchRow, SketchStore, new_writer
from servewell.serving.prediction_reading import Readings
from servewell.serving.prediction_sketches import REREAD_S, PredictionSketcher
from servewell.settings import Settings
from servewell.stats.bucket import Bucket, Histogram

FULL = {monitored.MODEL: {"monitoring": {"log_inputs": "full"}}}


@pytest.fixture
def trained(tmp_path: Path, database_url: str) -> Iterator[Services]:
    services = build_services(
        Settings(home=tmp_path / "home", database_url=database_url, models=FULL)
    )
    monitored.train(services, rows=2000)
    yield services
    services.close()


def _figures(services: Services, *, rescan: bool = False) -> dict[str, object]:
    report = monitor(services, monitored.MODEL, Span.parse("1d"), rescan=rescan)
    return monitored.window_figures(report)  # type: ignore[no-any-return]


def _stored_rows(services: Services) -> int:
    return sum(row.bucket.logged for row in SketchStore(services.registry).window(monitored.MODEL))


def test_rows_logged_without_sketches_are_backfilled_to_the_rescan(trained: Services) -> None:
    frame = monitored.loans(3000, seed=7, shift=0.5)
    now = datetime.now(UTC).timestamp()
    rows = monitored.logged_rows(frame, now - 300, span_s=3 * 3600)  # up to 5 min ago
    old, live = rows[:2000], rows[2000:]
    SqlPredictionStore(trained.registry).write(old)  # before 0009: rows, no sketches
    monitored.write_logged(trained, live)  # a server's: rows and their sketches
    labels = [(f"r{i}", int(frame["late"][i])) for i in range(0, 3000, 5)]
    SqlPredictionStore(trained.registry).label(monitored.MODEL, labels)
    assert _stored_rows(trained) == len(live)

    seen: list[tuple[int, int, int]] = []
    done = backfill_sketches(trained, monitored.MODEL, progress=lambda *a: seen.append(a))
    assert done.rows == 3000
    assert 0 < done.rebuilt < done.spans  # the live sketcher's buckets were already right
    assert seen[-1] == (done.spans, done.spans, 3000)
    assert _stored_rows(trained) == 3000  # nothing counted twice
    sketched = _figures(trained)
    monitored.assert_same_figures(sketched, _figures(trained, rescan=True))
    assert sketched["logged"] == 3000

    again = backfill_sketches(trained, monitored.MODEL)  # idempotent: nothing rewritten
    assert (again.rows, again.rebuilt) == (3000, 0)
    assert _stored_rows(trained) == 3000


def test_a_profile_given_late_is_backfilled(trained: Services) -> None:
    frame = monitored.loans(1500, seed=8, shift=0.5)
    now = datetime.now(UTC).timestamp()
    rows = monitored.logged_rows(frame, now - 300, span_s=2 * 3600)
    store = SketchStore(trained.registry)
    unprofiled = PredictionSketcher(store, _no_profile, 60.0, retention_s=86400)
    SqlPredictionStore(trained.registry).write(rows)
    unprofiled.write(rows)  # counts and latencies alone, as before the profile
    assert all(not row.bucket.features for row in store.window(monitored.MODEL))

    done = backfill_sketches(trained, monitored.MODEL, version=1)
    assert done.rows == 1500
    assert _stored_rows(trained) == 1500
    sketched = _figures(trained)
    monitored.assert_same_figures(sketched, _figures(trained, rescan=True))
    [amount] = [f for f in sketched["drift"]["features"] if f["name"] == "amount"]  # type: ignore[index]
    assert amount["drift"] is True


def test_a_backfill_beside_a_running_server_counts_each_row_once(trained: Services) -> None:
    old = monitored.loans(1000, seed=11)
    now = datetime.now(UTC).timestamp()
    SqlPredictionStore(trained.registry).write(monitored.logged_rows(old, now - 600, 7200))
    served = monitored.loans(300, seed=12)
    with monitored.serving(trained, FULL) as url:
        sender = threading.Thread(target=monitored.predict, args=(url, served, "live"))
        sender.start()
        done = backfill_sketches(trained, monitored.MODEL)  # while requests are logged
        sender.join()
        monitored.wait_for_rows(trained, 1300)
    assert done.rows >= 1000
    assert _stored_rows(trained) == 1300
    sketched = _figures(trained)
    monitored.assert_same_figures(sketched, _figures(trained, rescan=True))
    assert backfill_sketches(trained, monitored.MODEL).rebuilt == 0


def test_buckets_on_an_earlier_profiles_bins_are_rebuilt(trained: Services) -> None:
    frame = monitored.loans(600, seed=13)
    now = datetime.now(UTC).timestamp()
    rows = monitored.logged_rows(frame, now - 900, span_s=600)
    monitored.write_logged(trained, rows)
    store = SketchStore(trained.registry)
    [first, *_] = store.window(monitored.MODEL)
    earlier = Bucket(1, first_at=first.starts_at, last_at=first.starts_at)
    earlier.features["amount"] = Histogram(
        "numeric", "other-bins", np.ones(3, np.int64), np.ones(3), 0
    )
    store.save(
        [SketchRow(new_writer(), monitored.MODEL, 1, None, first.starts_at, first.ends_at, earlier)]
    )
    done = backfill_sketches(trained, monitored.MODEL)
    assert done.rebuilt >= 1
    assert _stored_rows(trained) == 600
    monitored.assert_same_figures(_figures(trained), _figures(trained, rescan=True))


def test_spans_still_open_are_left_to_the_live_sketcher(trained: Services) -> None:
    frame = monitored.loans(200, seed=9)
    now = datetime.now(UTC).timestamp()
    rows = monitored.logged_rows(frame, now, span_s=OPEN_MARGIN_S / 2)  # the last minute
    SqlPredictionStore(trained.registry).write(rows)
    done = backfill_sketches(trained, monitored.MODEL)
    assert (done.spans, done.rebuilt, done.rows) == (0, 0, 0)
    assert _stored_rows(trained) == 0


def test_a_servers_sketcher_reads_a_profile_given_late(trained: Services) -> None:
    """A version without a profile is looked at again every REREAD_S (its sketcher
    otherwise kept counts alone until the server restarted)."""
    clock = [datetime.now(UTC).timestamp()]
    given = [False]
    readings = Readings(trained)

    def reading_of(model: str, version: int) -> object:
        return readings.fresh(model, version) if given[0] else _no_profile(model, version)

    sketcher = PredictionSketcher(
        SketchStore(trained.registry), reading_of, 60.0, 86400, clock=lambda: clock[0]
    )
    frame = monitored.loans(20, seed=10)
    sketcher.add(monitored.logged_rows(frame, clock[0], 5))
    assert not _open_features(sketcher)
    given[0] = True  # ``servewell profile`` stored one
    sketcher.add(monitored.logged_rows(frame, clock[0], 5))
    assert not _open_features(sketcher)  # not looked at again yet
    clock[0] += REREAD_S
    sketcher.open.clear()
    sketcher.add(monitored.logged_rows(frame, clock[0], 5))
    assert _open_features(sketcher) == {"amount", "income", "plan"}


def _no_profile(model: str, version: int) -> object:
    raise LookupError(f"{model}@{version} has no profile yet")


def _open_features(sketcher: PredictionSketcher) -> set[str]:
    return {name for found in sketcher.open.values() for name in found.row.bucket.features}
