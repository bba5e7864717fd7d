"""The jobs as the server offers them, protocol-neutral: submit an uploaded file against
the version a name resolves to now, read a job's state and results, cancel, list. Who
may see a job is decided here: its owner (the key that submitted it), or an admin."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from servewell.errors import InvalidInput, JobNotFinished, JobNotFound
from servewell.jobs.folder import JobFolders
from servewell.jobs.results import Row
from servewell.jobs.runner import OpenScorer
from servewell.jobs.scoring import Scorer, loop_scorer, standalone_scorer
from servewell.jobs.tables import read_chunks
from servewell.registry import RegistryAccess
from servewell.registry.jobs import CANCELLED, SUCCEEDED, JobRecord, JobStore, new_job_id
from servewell.serving.deployment import Deployment
from servewell.serving.predictor import Predictor


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who asks: a key's name (None without keys) and whether it may see every job."""

    owner: str | None
    sees_all: bool


class JobService:
    """Jobs over the registry's job records and the jobs' folders."""

    def __init__(
        self, store: JobStore, folders: JobFolders, chunk_rows: int, store_root: Path
    ) -> None:
        self.store = store
        self.folders = folders
        self.chunk_rows = chunk_rows
        self.store_root = store_root
        """The artifact store's folder: where a path an admin submits must be."""
        self.submitted: Callable[[str], None] = lambda job_id: None
        """Called with each submitted job's id: the embedded executor wakes a thread,
        the Celery executor sends the job's task."""

    def upload_path(self) -> Path:
        """A fresh file for an upload to arrive in (``submit`` moves it into place)."""
        uploads = self.folders.root / "uploads"  # swept: see jobs.retention
        uploads.mkdir(parents=True, exist_ok=True)
        return uploads / f"{new_job_id()}.part"

    def stage_stored(self, relative: str) -> Path:
        """A file inside the artifact store, linked (or copied) where ``submit`` takes
        it; InvalidInput for a path outside the store or no such file."""
        root = self.store_root.resolve()
        source = (root / relative).resolve()
        if not source.is_relative_to(root) or not source.is_file():
            raise InvalidInput(f"no file '{relative}' in the artifact store")
        target = self.upload_path()
        try:
            os.link(source, target)  # the same bytes, no copy (the same file system)
        except OSError:
            shutil.copyfile(source, target)
        return target

    def submit(
        self,
        deployment: Deployment,
        viewer: Viewer,
        upload: Path,
        table_format: str,
        id_column: str | None,
    ) -> JobRecord:
        """Queue a job of ``upload`` against ``deployment``'s version (pinned); the file
        is checked first (InvalidInput: not of its format, no such id column)."""
        try:
            with closing(
                read_chunks(upload, table_format, deployment.signature, 1, id_column)
            ) as rows:
                next(rows, None)
        except BaseException:
            upload.unlink(missing_ok=True)
            raise
        job_id = new_job_id()
        target = self.folders.input(job_id, table_format)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(upload, target)
        job = self.store.create(
            deployment.name,
            deployment.number,
            owner=viewer.owner,
            input_format=table_format,
            id_column=id_column,
            chunk_rows=self.chunk_rows,
            job_id=job_id,
        )
        self.submitted(job_id)
        return job

    def get(self, job_id: str, viewer: Viewer) -> JobRecord:
        job = self.store.get(job_id)
        if not viewer.sees_all and job.owner != viewer.owner:
            raise JobNotFound(job_id)  # another key's job is not there, for this key
        return job

    def listed(self, viewer: Viewer) -> list[JobRecord]:
        return self.store.listed(viewer.owner, everyone=viewer.sees_all)

    def cancel(self, job_id: str, viewer: Viewer) -> JobRecord:
        """Cancel an unfinished job (its runner stops within a batch); a finished one
        stays as it ended."""
        self.get(job_id, viewer)
        self.store.finish(job_id, CANCELLED)
        return self.store.get(job_id)

    def results(self, job_id: str, viewer: Viewer) -> tuple[JobRecord, Iterator[list[Row]]]:
        """A succeeded job's rows, chunk by chunk in order; JobNotFinished before."""
        job = self.get(job_id, viewer)
        if job.state != SUCCEEDED:
            raise JobNotFinished(job_id, job.state)
        return job, self.folders.results(job_id, self.store.finished_chunks(job_id))


def job_status(job: JobRecord) -> dict[str, Any]:
    """A job as the API shows it."""
    now = datetime.now(UTC)
    return {
        "id": job.id,
        "model": job.model,
        "version": job.version,
        "state": job.state,
        "rows_done": job.rows_done,
        "rows_total": job.rows_total,
        "rows_failed": job.rows_failed,
        "rows_per_s": job.rows_per_s(now),
        "eta_s": job.eta_s(now),
        "error": job.error,
        "format": job.input_format,
        "id_column": job.id_column,
        "owner": job.owner,
        "created_at": job.created_at.isoformat(),
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
    }


def server_scorers(
    access: RegistryAccess,
    loop: asyncio.AbstractEventLoop,
    predictor: Predictor,
) -> OpenScorer:
    """How the server's job threads open the model steps for a job: through the
    server's own deployment of the pinned version while it serves it (its batch queue,
    shared with online requests), else on a copy of that version loaded for the job
    (the alias moved on and the version was unloaded)."""

    @contextmanager
    def open_scorer(job: JobRecord) -> Iterator[Scorer]:
        deployment = predictor.pool.find(job.model, job.version)
        if deployment is not None and deployment.is_up:
            yield loop_scorer(access, loop, predictor, deployment)
            return
        version = access.registry.get_version(job.model, job.version)
        with standalone_scorer(access, version) as scorer:
            yield scorer

    return open_scorer
