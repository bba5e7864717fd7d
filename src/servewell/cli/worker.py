"""``servewell worker``: a Celery worker running batch jobs (``jobs.executor: celery``)
on this machine, sharing the registry database, the artifact store and the broker with
the servers that take the submissions."""

from __future__ import annotations

import typer

from servewell.cli.output import open_services


def worker(
    concurrency: int = typer.Option(1, "--concurrency", "-c", min=1, help="Jobs run at once."),
    queues: str | None = typer.Option(None, "--queues", "-Q", help="Queues to take tasks from."),
    loglevel: str = typer.Option("INFO", "--loglevel", help="Celery's log level."),
) -> None:
    """Run batch jobs from the broker until stopped (SIGTERM: finish the batch under way)."""
    from servewell.jobs.workers import QUEUE, celery_app

    with open_services() as services:
        app = celery_app(services.settings, services)
        app.Worker(
            pool="threads",  # one process: the registry's connections are not forked
            concurrency=concurrency,
            queues=(queues or QUEUE).split(","),
            prefetch_multiplier=1,
            loglevel=loglevel,
        ).start()
