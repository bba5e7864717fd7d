"""Batch jobs in the registry, on SQLite and PostgreSQL: a chunk is counted once however
often it is recorded; a cancel is not overwritten by a late finish."""

from __future__ import annotations

import pytest

from servewell.bootstrap import Services
from servewell.errors import JobNotFound
from servewell.registry.jobs import CANCELLED, RUNNING, SUCCEEDED, JobStore


@pytest.fixture
def store(services: Services) -> JobStore:
    return JobStore(services.registry)


def _job(store: JobStore, owner: str | None = "alice") -> str:
    job = store.create("fraud", 2, owner=owner, input_format="csv", id_column=None, chunk_rows=10)
    return job.id


def test_a_chunk_recorded_twice_counts_once(store: JobStore) -> None:
    job_id = _job(store)
    assert store.start(job_id, rows_total=25)
    assert store.finish_chunk(job_id, 0, 0, 10, 1)
    assert not store.finish_chunk(job_id, 0, 0, 10, 1)  # a second worker, or a retry
    assert store.finish_chunk(job_id, 1, 10, 10, 0)
    job = store.get(job_id)
    assert (job.state, job.rows_done, job.rows_failed, job.rows_total) == (RUNNING, 20, 1, 25)
    assert store.finished_chunks(job_id) == [0, 1]


def test_a_cancel_wins_over_a_late_finish(store: JobStore) -> None:
    job_id = _job(store)
    assert store.finish(job_id, CANCELLED)
    assert not store.finish(job_id, SUCCEEDED)
    assert not store.start(job_id, 5)
    assert store.get(job_id).state == CANCELLED
    assert store.unfinished() == []


def test_listing_is_per_owner_and_delete_removes_everything(store: JobStore) -> None:
    mine, theirs = _job(store, "alice"), _job(store, "bob")
    assert [job.id for job in store.listed("alice")] == [mine]
    assert {job.id for job in store.listed(everyone=True)} == {mine, theirs}
    store.finish_chunk(mine, 0, 0, 10, 0)
    store.delete(mine)
    with pytest.raises(JobNotFound):
        store.get(mine)
    assert store.finished_chunks(mine) == []
