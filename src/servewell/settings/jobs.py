"""Batch prediction jobs' section of the settings (``jobs:``): who runs them, in what
pieces, and how long their files are kept."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from servewell.settings.section import Section


class JobsSettings(Section):
    """Batch prediction jobs (``POST /v1/models/{name}/jobs``, ``servewell batch``)."""

    executor: Literal["local", "celery"] = "local"
    """``local``: worker threads inside the server; ``celery``: ``servewell worker``
    processes sharing the registry database, the artifact store and the broker."""
    max_threads: int = Field(default=2, ge=1)
    """The embedded executor's threads: at most this many jobs run at once in a server
    process, each with one batch at the model at a time, so online traffic keeps its turn."""
    chunk_rows: int = Field(default=10_000, ge=1)
    """Rows per chunk: the unit that is scored, written and recorded at once (a job
    resumes from its last finished chunk)."""
    max_attempts: int = Field(default=3, ge=1)
    """Tries per chunk before the job fails (an infrastructure failure; a bad row is
    never one: it gets its message in the ``error`` column)."""
    max_upload_bytes: int = Field(default=2 * 1024 * 1024 * 1024, ge=1)
    """Largest file a job upload may be (its own limit: not ``server.max_body_bytes``)."""
    retention_days: float = Field(default=7.0, gt=0)
    """Finished jobs' inputs, results and records are deleted this long after they ended."""
    broker_url: str | None = None
    """Celery's broker; unset means ``redis_url``."""
