"""Running one job to its end, from its last finished chunk: the same steps whoever runs
it (the server's threads, a Celery worker).

Each chunk is scored (tried up to ``max_attempts`` times, with the model steps opened
afresh after a failure), its rows written to the chunk's file (a temp file renamed into
place), then recorded in the database (``JobStore.finish_chunk``, one transaction). A
runner killed anywhere leaves either a recorded chunk or one that is scored again: the
result has every row once. A lease (``job:<id>``) says who runs the job; it is renewed
between batches, so a runner that died is replaced once its lease expires.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack, closing
from dataclasses import dataclass

import orjson

from servewell.errors import ServewellError
from servewell.jobs.folder import JobFolders
from servewell.jobs.results import atomic_file
from servewell.jobs.scoring import Scorer, score_chunk
from servewell.jobs.tables import Chunk, count_rows, read_chunks
from servewell.registry.jobs import CANCELLED, FAILED, SUCCEEDED, JobRecord, JobStore
from servewell.registry.leases import Leases

logger = logging.getLogger(__name__)

#: How long a runner's hold on a job lasts unless renewed (renewed every third of it).
LEASE_TTL_S = 15.0
#: How often a runner reads whether its job was cancelled.
CANCEL_POLL_S = 0.5

OpenScorer = Callable[[JobRecord], AbstractContextManager[Scorer]]


class Stopped(Exception):
    """The runner must stop: the job was cancelled, its lease lost, or the process is
    stopping (the job stays unfinished, for another runner to resume)."""


@dataclass(frozen=True)
class JobRunner:
    """What running a job takes: where its records and files are, how the model steps
    are opened, how often a chunk is tried, and who holds the job."""

    store: JobStore
    folders: JobFolders
    leases: Leases
    holder: str
    open_scorer: OpenScorer
    max_attempts: int
    stopping: Callable[[], bool] = lambda: False

    def try_run(self, job_id: str) -> bool:
        """Run the job if nobody else does (its lease is free); False if someone does."""
        lease = f"job:{job_id}"
        if not self.leases.acquire(lease, self.holder, LEASE_TTL_S):
            return False
        try:
            self.run(self.store.get(job_id))
        except Stopped:
            pass
        finally:
            self.leases.release(lease, self.holder)
        return True

    def run(self, job: JobRecord) -> None:
        """Score the job's unfinished chunks and end it; raises Stopped."""
        path = self.folders.input(job.id, job.input_format)
        try:
            if not self.store.start(job.id, count_rows(path, job.input_format)):
                return  # cancelled meanwhile
            self._chunks(job)
        except Stopped:
            raise
        except Exception as exc:  # infrastructure, or an input that cannot be read
            logger.exception("job %s failed", job.id)
            self.store.finish(job.id, FAILED, _reason(exc))
            return
        self.store.finish(job.id, SUCCEEDED)

    def _chunks(self, job: JobRecord) -> None:
        done = set(self.store.finished_chunks(job.id))
        watch = _Watch(self, job.id)
        # The model steps in a stack of their own: a failed chunk reopens them, while
        # the reading goes on where it is.
        with ExitStack() as stack:
            scorer = stack.enter_context(self.open_scorer(job))
            path = self.folders.input(job.id, job.input_format)
            chunks = read_chunks(
                path, job.input_format, scorer.signature, job.chunk_rows, job.id_column
            )
            with closing(chunks):
                for chunk in chunks:
                    if chunk.index in done:
                        continue
                    watch()
                    scorer = self._finish_chunk(job, chunk, scorer, stack, watch)
        recorded = self.store.get(job.id)
        if recorded.rows_done != recorded.rows_total:  # never expected: say so, not succeed
            raise RuntimeError(
                f"the finished chunks hold {recorded.rows_done} rows of {recorded.rows_total}"
            )

    def _finish_chunk(
        self, job: JobRecord, chunk: Chunk, scorer: Scorer, stack: ExitStack, watch: _Watch
    ) -> Scorer:
        """Score, write and record one chunk; the scorer to go on with."""
        for attempt in range(1, self.max_attempts + 1):
            try:
                rows = score_chunk(scorer, chunk, job.id_column, watch)
                break
            except Stopped:
                raise
            except Exception as exc:
                if self.stopping():  # the server stops under it: not the chunk's fault
                    raise Stopped from exc
                if attempt == self.max_attempts:
                    raise ChunkFailed(chunk.index, attempt, exc) from exc
                logger.warning(
                    "job %s chunk %d failed (try %d): %s", job.id, chunk.index, attempt, exc
                )
                stack.close()  # the model steps afresh: the version may have moved away
                scorer = stack.enter_context(self.open_scorer(job))
        with atomic_file(self.folders.chunk(job.id, chunk.index)) as temp:
            temp.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in rows))
        failed = sum(row["error"] is not None for row in rows)
        self.store.finish_chunk(job.id, chunk.index, chunk.first_row, len(rows), failed)
        return scorer


class ChunkFailed(Exception):
    def __init__(self, index: int, attempts: int, cause: Exception) -> None:
        super().__init__(f"chunk {index} failed {attempts} times; last: {_reason(cause)}")


class _Watch:
    """Called between batches: stops the runner when the job was cancelled, the process
    stops or the lease is lost, and renews the lease."""

    def __init__(self, runner: JobRunner, job_id: str) -> None:
        self.runner = runner
        self.job_id = job_id
        self.checked = self.renewed = time.monotonic()

    def __call__(self) -> None:
        runner = self.runner
        if runner.stopping():
            raise Stopped
        now = time.monotonic()
        if now - self.checked >= CANCEL_POLL_S:
            self.checked = now
            if runner.store.get(self.job_id).state == CANCELLED:
                raise Stopped
        if now - self.renewed >= LEASE_TTL_S / 3:
            self.renewed = now
            if not runner.leases.acquire(f"job:{self.job_id}", runner.holder, LEASE_TTL_S):
                raise Stopped


def _reason(exc: Exception) -> str:
    if isinstance(exc, ServewellError):
        return exc.message
    return str(exc) or type(exc).__name__
