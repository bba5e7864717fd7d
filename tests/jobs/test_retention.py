"""Finished jobs go after ``jobs.retention_days``: records, input and results; jobs
still running stay, whatever their age."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from servewell.bootstrap import Services
from servewell.jobs.folder import JobFolders
from servewell.jobs.retention import sweep_jobs
from servewell.registry.jobs import SUCCEEDED, JobStore


def test_finished_jobs_past_retention_are_swept(services: Services) -> None:
    store = JobStore(services.registry)
    folders = JobFolders(services.artifacts.root / "jobs")
    done, running = (
        store.create("m", 1, owner=None, input_format="csv", id_column=None, chunk_rows=5)
        for _ in range(2)
    )
    for job in (done, running):
        folders.input(job.id, "csv").parent.mkdir(parents=True)
        folders.input(job.id, "csv").write_text("x\n1\n")
    store.start(running.id, 1)
    store.finish(done.id, SUCCEEDED)
    left = folders.root / "uploads" / "abc.part"  # a server killed mid-upload
    left.parent.mkdir(parents=True)
    left.write_bytes(b"x,")
    assert sweep_jobs(store, folders, retention_days=7) == 0  # not old enough yet
    assert left.exists()
    later = datetime.now(UTC) + timedelta(days=7, minutes=1)
    assert sweep_jobs(store, folders, retention_days=7, now=later) == 1
    assert [job.id for job in store.listed(everyone=True)] == [running.id]
    assert not folders.folder(done.id).exists()
    assert not left.exists()
    assert folders.input(running.id, "csv").exists()
