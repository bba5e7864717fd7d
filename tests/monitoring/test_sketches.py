"""A time window from the stored window sketches equals the rescan of its rows
(SQLite and PostgreSQL): counts, quality, every drift statistic (PSI to 1e-6), the
latency percentiles to the quantile sketch's error; KS within 0.01 of
``scipy.stats.ks_2samp`` with the same verdict; two writers (replicas) merge; compacting
closed buckets into hours changes no figure."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

import monitored_models as monitored
from servewell.bootstrap import Services, build_services
from servewell.monitoring.run import monitor
from servewell.monitoring.window import Span
from servewell.registry.attachments import PROFILE_ROLE, read_attachment_json
from servewell.registry.predictions import SqlPredictionStore
from servewell.registry.sketches import SketchStore
from servewell.settings import Settings

_figures = monitored.window_figures
FULL = {monitored.MODEL: {"monitoring": {"log_inputs": "full"}}}


@pytest.fixture
def trained(tmp_path: Path, database_url: str) -> Iterator[Services]:
    services = build_services(
        Settings(home=tmp_path / "home", database_url=database_url, models=FULL)
    )
    monitored.train(services, rows=2000)
    yield services
    services.close()


def test_a_sketched_window_equals_its_rescan_and_scipy(trained: Services) -> None:
    frame = monitored.loans(3000, seed=7, shift=0.5)  # amount: +0.5 sd
    now = datetime.now(UTC).timestamp()
    rows = monitored.logged_rows(frame, now, span_s=40 * 60)
    monitored.write_logged(trained, rows[::2])  # two replicas, each its own rows
    monitored.write_logged(trained, rows[1::2])
    labels = [(f"r{i}", int(frame["late"][i]) ^ (i % 7 == 0)) for i in range(0, 3000, 4)]
    SqlPredictionStore(trained.registry).label(monitored.MODEL, labels)
    span = Span.parse("1d")
    sketched = _figures(monitor(trained, monitored.MODEL, span))
    rescanned = _figures(monitor(trained, monitored.MODEL, span, rescan=True))
    monitored.assert_same_figures(sketched, rescanned)
    assert sketched["quality"] is not None

    version = trained.registry.get_version(monitored.MODEL, 1)
    training = read_attachment_json(trained, version, PROFILE_ROLE)["sample"]["features"]
    logged = frame["amount"].to_numpy()[[not row.cached for row in rows]]
    expected = stats.ks_2samp(np.asarray(training["amount"], np.float64), logged)
    [amount] = [f for f in sketched["drift"]["features"] if f["name"] == "amount"]
    ks = next(t for t in amount["tests"] if t["test"] == "ks")
    assert ks["statistic"] == pytest.approx(expected.statistic, abs=0.01)
    assert ks["drift"] is bool(expected.pvalue <= 0.05) is True
    assert amount["drift"] is True


def test_compacting_closed_buckets_changes_no_figure(trained: Services) -> None:
    frame = monitored.loans(2000, seed=8)
    now = datetime.now(UTC).timestamp()
    monitored.write_logged(trained, monitored.logged_rows(frame, now, span_s=3 * 3600))
    store = SketchStore(trained.registry)
    before = store.window(monitored.MODEL)
    span = Span.parse("1d", end=datetime.fromtimestamp(now, UTC))
    first = _figures(monitor(trained, monitored.MODEL, span))
    merged = store.compact(now)
    after = store.window(monitored.MODEL)
    assert merged > 0
    assert len(after) < len(before)
    assert sum(row.bucket.logged for row in after) == 2000
    closed = [row for row in after if row.ends_at <= now // 3600 * 3600]
    assert len(closed) == len({row.starts_at // 3600 for row in closed}) == 3  # one an hour
    second = _figures(monitor(trained, monitored.MODEL, span))
    monitored.assert_same_figures(second, first)
    assert store.compact(now) == 0  # nothing left to merge
    assert store.prune(now + 3600) == len(after)


def test_a_window_covers_the_buckets_it_overlaps(trained: Services) -> None:
    frame = monitored.loans(600, seed=9)
    end = math.floor(datetime.now(UTC).timestamp() / 60) * 60 - 600  # a bucket boundary
    rows = monitored.logged_rows(frame, end, span_s=1200)  # over twenty one-minute buckets
    monitored.write_logged(trained, rows)
    at = datetime.fromtimestamp(end, UTC)
    # windows of at least ten buckets are read from the sketches (shorter: their rows)
    inside = sum(row.at >= end - 1200 for row in rows)
    whole = _figures(monitor(trained, monitored.MODEL, Span.parse("20m", end=at)))
    rescanned = _figures(monitor(trained, monitored.MODEL, Span.parse("20m", end=at), rescan=True))
    assert whole["logged"] == rescanned["logged"] == inside  # the window starts on a bucket
    less = _figures(monitor(trained, monitored.MODEL, Span.parse("19m30s", end=at)))
    assert less["logged"] == inside  # the bucket holding its start counts whole
