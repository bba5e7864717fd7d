"""Batch prediction jobs in the registry database: the job (version pinned at
submission, owner, state, progress) and its finished chunks.

Progress is the set of finished chunks. Finishing a chunk is one transaction: the
chunk's row and the job's counters together, and only if that chunk was not recorded
already, so a chunk scored twice (a worker killed after writing its file, before the
commit; a Celery message delivered twice) is counted once.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from servewell.errors import JobNotFound
from servewell.registry import schema
from servewell.registry.database import as_utc
from servewell.registry.sql import SqlRegistry

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED = (
    "queued",
    "running",
    "succeeded",
    "failed",
    "cancelled",
)
UNFINISHED = (QUEUED, RUNNING)


def new_job_id() -> str:
    return secrets.token_hex(8)


@dataclass(frozen=True, slots=True)
class JobRecord:
    """One job as stored."""

    id: str
    model: str
    version: int
    owner: str | None
    """The name of the key that submitted it (None: keys off, or the local CLI)."""
    input_format: str
    id_column: str | None
    chunk_rows: int
    state: str
    rows_total: int | None
    rows_done: int
    rows_failed: int
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @property
    def is_finished(self) -> bool:
        return self.state not in UNFINISHED

    def rows_per_s(self, now: datetime) -> float | None:
        """Rows scored per second since it started (None before any row)."""
        if self.started_at is None or self.rows_done == 0:
            return None
        seconds = ((self.finished_at or now) - self.started_at).total_seconds()
        return self.rows_done / seconds if seconds > 0 else None

    def eta_s(self, now: datetime) -> float | None:
        """Seconds left at the current rate (0 once finished; None while unknown)."""
        if self.is_finished:
            return 0.0
        rate = self.rows_per_s(now)
        if rate is None or self.rows_total is None:
            return None
        return max(0.0, (self.rows_total - self.rows_done) / rate)


class JobStore:
    """Create, read, advance and delete jobs."""

    def __init__(self, registry: SqlRegistry) -> None:
        self.registry = registry

    def create(
        self,
        model: str,
        version: int,
        *,
        owner: str | None,
        input_format: str,
        id_column: str | None,
        chunk_rows: int,
        job_id: str | None = None,
    ) -> JobRecord:
        """A queued job (``job_id``: one from :func:`new_job_id` whose files are in place)."""
        job_id = job_id or new_job_id()
        values = {
            "id": job_id,
            "model": model,
            "version": version,
            "owner": owner,
            "input_format": input_format,
            "id_column": id_column,
            "chunk_rows": chunk_rows,
            "state": QUEUED,
            "rows_done": 0,
            "rows_failed": 0,
            "created_at": datetime.now(UTC),
        }
        self.registry.write(lambda conn: conn.execute(insert(schema.jobs).values(**values)))
        return self.get(job_id)

    def get(self, job_id: str) -> JobRecord:
        with self.registry.read() as conn:
            row = conn.execute(select(schema.jobs).where(schema.jobs.c.id == job_id)).first()
        if row is None:
            raise JobNotFound(job_id)
        return _record(row._mapping)

    def listed(self, owner: str | None = None, *, everyone: bool = False) -> list[JobRecord]:
        """``owner``'s jobs (or every job, with ``everyone``), newest first."""
        query = select(schema.jobs).order_by(schema.jobs.c.created_at.desc())
        if not everyone:
            query = query.where(schema.jobs.c.owner == owner)
        with self.registry.read() as conn:
            return [_record(row._mapping) for row in conn.execute(query)]

    def unfinished(self) -> list[str]:
        """Jobs queued or running, oldest first (to run or to resume)."""
        jobs = schema.jobs
        query = select(jobs.c.id).where(jobs.c.state.in_(UNFINISHED)).order_by(jobs.c.created_at)
        with self.registry.read() as conn:
            return list(conn.scalars(query))

    def start(self, job_id: str, rows_total: int) -> bool:
        """Mark a queued or running job running, with its row count; False when it has
        finished meanwhile (cancelled)."""
        jobs = schema.jobs

        def mark(conn: Connection) -> bool:
            started = conn.scalar(select(jobs.c.started_at).where(jobs.c.id == job_id))
            values: dict[str, Any] = {"state": RUNNING, "rows_total": rows_total}
            if started is None:
                values["started_at"] = datetime.now(UTC)
            changed = conn.execute(
                update(jobs).where(jobs.c.id == job_id, jobs.c.state.in_(UNFINISHED)).values(values)
            ).rowcount
            return bool(changed)

        return self.registry.write(mark)

    def finished_chunks(self, job_id: str) -> list[int]:
        chunks = schema.job_chunks
        query = select(chunks.c.chunk).where(chunks.c.job_id == job_id).order_by(chunks.c.chunk)
        with self.registry.read() as conn:
            return list(conn.scalars(query))

    def finish_chunk(
        self, job_id: str, chunk: int, first_row: int, rows: int, rows_failed: int
    ) -> bool:
        """Record a chunk whose results file is in place, and count its rows, in one
        transaction; False (nothing changed) when it was recorded already."""
        chunks, jobs = schema.job_chunks, schema.jobs

        def record(conn: Connection) -> bool:
            done = select(chunks.c.chunk).where(chunks.c.job_id == job_id, chunks.c.chunk == chunk)
            if conn.scalar(done) is not None:
                return False
            conn.execute(
                insert(chunks).values(
                    job_id=job_id,
                    chunk=chunk,
                    first_row=first_row,
                    rows=rows,
                    rows_failed=rows_failed,
                    finished_at=datetime.now(UTC),
                )
            )
            conn.execute(
                update(jobs)
                .where(jobs.c.id == job_id)
                .values(
                    rows_done=jobs.c.rows_done + rows,
                    rows_failed=jobs.c.rows_failed + rows_failed,
                )
            )
            return True

        return self.registry.write(record)

    def finish(self, job_id: str, state: str, error: str | None = None) -> bool:
        """End an unfinished job as ``state``; False when it had ended already (a cancel
        that came first stays a cancel)."""
        jobs = schema.jobs
        values = {"state": state, "error": error, "finished_at": datetime.now(UTC)}

        def end(conn: Connection) -> bool:
            query = update(jobs).where(jobs.c.id == job_id, jobs.c.state.in_(UNFINISHED))
            return bool(conn.execute(query.values(values)).rowcount)

        return self.registry.write(end)

    def finished_before(self, moment: datetime) -> list[str]:
        """Jobs that ended before ``moment`` (for the retention sweep)."""
        jobs = schema.jobs
        query = select(jobs.c.id).where(
            jobs.c.state.not_in(UNFINISHED), jobs.c.finished_at < moment
        )
        with self.registry.read() as conn:
            return list(conn.scalars(query))

    def delete(self, job_id: str) -> None:
        def remove(conn: Connection) -> None:
            conn.execute(delete(schema.job_chunks).where(schema.job_chunks.c.job_id == job_id))
            conn.execute(delete(schema.jobs).where(schema.jobs.c.id == job_id))

        self.registry.write(remove)


def _record(row: Any) -> JobRecord:
    values = dict(row)
    for name in ("created_at", "started_at", "finished_at"):
        if values[name] is not None:
            values[name] = as_utc(values[name])
    return JobRecord(**values)
