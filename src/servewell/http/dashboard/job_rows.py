"""The dashboard's Jobs data: every job the signed-in key may see, with its progress,
as the job API reports it (``jobs/service.py``: ``job_status``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from servewell.http.running import RunningServer
from servewell.jobs.service import Viewer, job_status
from servewell.registry.jobs import SUCCEEDED, UNFINISHED


@dataclass(frozen=True, slots=True)
class JobRow:
    status: dict[str, Any]
    """``job_status``: id, model, version, state, rows, rows_per_s, eta_s, error..."""
    progress: float | None
    """Rows done of the rows in the input (0..1; None while the total is unknown)."""
    results: str | None
    """Where its results download (a succeeded job's)."""
    cancellable: bool


def job_rows(server: RunningServer, viewer: Viewer) -> list[JobRow]:
    """The jobs ``viewer`` sees, newest first. Reads the database: call it off the loop."""
    return [_row(job_status(job)) for job in server.jobs.listed(viewer)]


def _row(status: dict[str, Any]) -> JobRow:
    total, state = status["rows_total"], status["state"]
    if state == SUCCEEDED:
        progress: float | None = 1.0
    elif total:
        progress = min(1.0, status["rows_done"] / total)
    else:
        progress = None
    results = f"/ui/jobs/{status['id']}/results" if state == SUCCEEDED else None
    return JobRow(status, progress, results, state in UNFINISHED)
