"""The embedded executor: ``jobs.max_threads`` worker threads inside the server process
run the jobs in the registry database, one job per thread, each with one batch at the
model at a time (so online requests keep their turn in the model's queue).

A thread looks for work when woken (a job was submitted) and every ``POLL_S``: the
oldest unfinished job whose lease it can take, so a job left by a server killed
mid-job is resumed by the next server up (once the dead one's lease expires), from its
last finished chunk; with ``--workers N`` or several replicas, each job still runs in
one place. Finished jobs past ``jobs.retention_days`` are swept while idle.
"""

from __future__ import annotations

import logging
import threading
import time

from servewell.jobs.retention import sweep_jobs
from servewell.jobs.runner import JobRunner

logger = logging.getLogger(__name__)

#: How often an idle thread looks for jobs nobody runs.
POLL_S = 2.0
#: How often finished jobs past their retention are swept.
SWEEP_EVERY_S = 600.0


class EmbeddedExecutor:
    """Worker threads over a :class:`JobRunner`; :meth:`start` and :meth:`stop` are
    the server's lifespan."""

    def __init__(
        self,
        runner: JobRunner,
        threads: int,
        retention_days: float,
        stopping: threading.Event,
    ) -> None:
        self.runner = runner
        self.threads = threads
        self.retention_days = retention_days
        self.stopping = stopping
        """Set by :meth:`stop`; the runner watches it between batches."""
        self._wake = threading.Event()
        self._workers: list[threading.Thread] = []
        self._running: set[str] = set()
        self._lock = threading.Lock()
        self._swept_at = 0.0

    def start(self) -> None:
        for number in range(self.threads):
            worker = threading.Thread(
                target=self._work, name=f"servewell-jobs-{number}", daemon=True
            )
            worker.start()
            self._workers.append(worker)

    def wake(self) -> None:
        """A job was submitted: an idle thread takes it now rather than at its next poll."""
        self._wake.set()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop at the next batch; the jobs under way stay unfinished, to be resumed."""
        self.stopping.set()
        self._wake.set()
        until = time.monotonic() + timeout_s
        for worker in self._workers:
            worker.join(max(0.0, until - time.monotonic()))

    def _work(self) -> None:
        while not self.stopping.is_set():
            try:
                if not self._run_one():
                    self._sweep_now_and_then()
                    self._wake.wait(POLL_S)
                    self._wake.clear()
            except Exception:  # the database is down: try again at the next poll
                logger.exception("the job executor failed; trying again")
                self.stopping.wait(POLL_S)

    def _run_one(self) -> bool:
        """Run one job nobody else runs; False when there was none."""
        for job_id in self.runner.store.unfinished():
            with self._lock:
                if job_id in self._running:
                    continue
                self._running.add(job_id)
            try:
                if self.runner.try_run(job_id):
                    return True
            finally:
                with self._lock:
                    self._running.discard(job_id)
        return False

    def _sweep_now_and_then(self) -> None:
        now = time.monotonic()
        if now - self._swept_at < SWEEP_EVERY_S:
            return
        self._swept_at = now
        removed = sweep_jobs(self.runner.store, self.runner.folders, self.retention_days)
        if removed:
            logger.info("removed %d finished jobs past their retention", removed)
