"""Load tests recorded against model versions, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from servewell.bootstrap import Services
from servewell.errors import ModelNotFound, VersionNotFound
from servewell.registry.loadtests import LoadTestStore
from serving_models import register_python

SUMMARY = {"steps": [{"label": "c=16", "throughput_rps": 812.5, "p99_ms": 12.5}]}


@pytest.fixture
def store(services: Services) -> LoadTestStore:
    register_python(services, "fraud", "sum", signature="sum.json")
    register_python(services, "fraud", "sum", signature="sum.json")
    return LoadTestStore(services.registry)


def test_a_record_reads_back_as_it_was_written(store: LoadTestStore) -> None:
    started = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    written = store.record(
        "fraud",
        2,
        passed=True,
        slo="p99<50ms",
        summary=SUMMARY,
        started_at=started,
        duration_s=30.0,
        protocol="v2",
        settings={"concurrency": [1, 16]},
        by="ci",
    )
    read = store.latest("fraud", 2)
    assert read == written
    assert read is not None
    assert read.started_at == started
    assert read.started_at.tzinfo
    assert (read.passed, read.slo, read.summary, read.settings) == (
        True,
        "p99<50ms",
        SUMMARY,
        {"concurrency": [1, 16]},
    )
    assert store.latest("fraud", 1) is None


def test_latest_is_the_newest_and_list_goes_newest_first(store: LoadTestStore) -> None:
    now = datetime.now(UTC)
    store.record("fraud", 2, passed=False, slo="", summary={}, started_at=now - timedelta(days=2))
    store.record("fraud", 2, passed=True, slo="", summary={}, started_at=now)
    store.record("fraud", 1, passed=True, slo="", summary={}, started_at=now - timedelta(days=1))
    latest = store.latest("fraud", 2)
    assert latest is not None
    assert latest.passed
    assert [(r.version, r.passed) for r in store.list("fraud")] == [
        (2, True),
        (1, True),
        (2, False),
    ]
    assert store.list("other") == []
    assert len(store.list()) == 3


def test_a_record_needs_a_registered_version(store: LoadTestStore) -> None:
    with pytest.raises(VersionNotFound):
        store.record("fraud", 9, passed=True, slo="", summary={})
    with pytest.raises(ModelNotFound):
        store.record("nobody", 1, passed=True, slo="", summary={})
    assert store.list() == []
