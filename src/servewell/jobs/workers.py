"""Celery as the jobs' engine (``jobs.executor: celery``): a submission sends one task
naming the job; ``servewell worker`` processes, on any machine sharing the registry
database, the artifact store and the broker, run it with the same :class:`JobRunner`
as the server's own threads.

Celery delivers the task; the exactly-once bookkeeping is the runner's (leases,
chunks recorded in one transaction). The task is acknowledged late (``acks_late``),
put back when its worker dies (``reject_on_worker_lost``), one at a time per process
(prefetch 1), visible again to other workers after ``VISIBILITY_TIMEOUT_S`` on Redis.
A worker starting up also sends a task for every unfinished job, so a job whose worker
was killed resumes as soon as its lease expires, whichever comes first; a task finding
the job held by a live runner tries again later, one finding it finished does nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from servewell.errors import MissingDependency
from servewell.jobs.folder import JobFolders
from servewell.jobs.runner import LEASE_TTL_S, JobRunner
from servewell.jobs.scoring import Scorer, standalone_scorer
from servewell.registry import RegistryAccess
from servewell.registry.jobs import JobRecord, JobStore
from servewell.registry.leases import Leases, holder_id
from servewell.settings import Settings

logger = logging.getLogger(__name__)

TASK = "servewell.run_job"
QUEUE = "servewell-jobs"
#: How long a task taken by a worker that died stays invisible to the others (Redis).
VISIBILITY_TIMEOUT_S = 60


def broker_url(settings: Settings) -> str:
    url = settings.jobs.broker_url or settings.redis_url
    if url is None:
        from servewell.errors import InvalidConfig

        raise InvalidConfig(
            "jobs.executor is 'celery' but neither jobs.broker_url nor redis_url is set"
        )
    return url


def celery_app(settings: Settings, access: RegistryAccess | None = None) -> Any:
    """The Celery app: a sender (the server) or, given ``access``, a worker too."""
    try:
        from celery import Celery
    except ImportError:
        raise MissingDependency("celery", "celery") from None
    app = Celery("servewell", broker=broker_url(settings), set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=QUEUE,
        task_ignore_result=True,
        broker_transport_options={"visibility_timeout": VISIBILITY_TIMEOUT_S},
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
    )
    if access is not None:
        _add_worker_task(app, access)
    return app


def send_job(app: Any, job_id: str) -> None:
    app.send_task(TASK, args=[job_id], queue=QUEUE)


def _add_worker_task(app: Any, access: RegistryAccess) -> None:
    store = JobStore(access.registry)
    runner = JobRunner(
        store,
        JobFolders(access.artifacts.root / "jobs"),
        Leases(access.registry),
        holder_id(),
        lambda job: _scorer(access, job),
        access.settings.jobs.max_attempts,
    )

    @app.task(name=TASK, bind=True, max_retries=None)  # type: ignore[untyped-decorator]
    def run_job(task: Any, job_id: str) -> None:
        if store.get(job_id).is_finished:
            return
        if not runner.try_run(job_id):  # another runner holds it (or did, and died)
            raise task.retry(countdown=LEASE_TTL_S / 3)

    from celery.signals import worker_ready

    @worker_ready.connect(weak=False)  # type: ignore[untyped-decorator]
    def resume_unfinished(**_: Any) -> None:
        for job_id in store.unfinished():
            send_job(app, job_id)


@contextmanager
def _scorer(access: RegistryAccess, job: JobRecord) -> Iterator[Scorer]:
    version = access.registry.get_version(job.model, job.version)
    with standalone_scorer(access, version) as scorer:
        yield scorer
