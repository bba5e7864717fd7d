"""Finished jobs are kept ``jobs.retention_days``: then their records, input and
results go; so do uploads that never became a job (a server killed mid-upload)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from servewell.jobs.folder import JobFolders
from servewell.registry.jobs import JobStore


def sweep_jobs(
    store: JobStore, folders: JobFolders, retention_days: float, now: datetime | None = None
) -> int:
    """Delete the jobs that ended more than ``retention_days`` ago; how many."""
    moment = (now or datetime.now(UTC)) - timedelta(days=retention_days)
    expired = store.finished_before(moment)
    for job_id in expired:
        folders.delete(job_id)  # files first: a record a crash leaves here is swept again
        store.delete(job_id)
    for upload in folders.uploads(older_than=moment):
        upload.unlink(missing_ok=True)
    return len(expired)
