"""The Jobs page: every batch job with its progress, rows/s, ETA and results; cancel
(admin). It reads and cancels through the job service the job API uses
(``jobs/service.py``); ``jobs.js`` polls ``GET /ui/api/jobs`` so progress bars advance.

Every signed-in visitor sees every job's progress (the dashboard is an operator's
view); a job's results download for an admin, or for the key that submitted it, as
through ``GET /v1/jobs/{id}/results``.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from servewell.http.dashboard.access import Admin, Principal, Viewer, running
from servewell.http.dashboard.job_rows import job_rows
from servewell.http.dashboard.pages import NavItem, render
from servewell.http.guard import DASHBOARD_PREFIX
from servewell.http.jobs import results_response
from servewell.jobs.service import Viewer as JobViewer

router = APIRouter()
NAV = NavItem("Jobs", "/jobs", 40)
EVERY_JOB = JobViewer(None, sees_all=True)


@router.get("/jobs")
async def jobs_page(request: Request, principal: Viewer, cancelled: str | None = None) -> Response:
    rows = await asyncio.to_thread(job_rows, running(request), EVERY_JOB)
    return render(request, "jobs.html", principal, jobs=rows, cancelled=cancelled)


@router.get("/api/jobs")
async def jobs_json(request: Request, principal: Viewer) -> dict[str, Any]:
    rows = await asyncio.to_thread(job_rows, running(request), EVERY_JOB)
    return {"jobs": [asdict(row) for row in rows]}


@router.post("/jobs/{job_id}/cancel")
async def cancel_job(request: Request, job_id: str, principal: Admin) -> Response:
    """Cancel a queued or running job (its runner stops within a batch)."""
    await asyncio.to_thread(running(request).jobs.cancel, job_id, EVERY_JOB)
    return RedirectResponse(f"{DASHBOARD_PREFIX}/jobs?cancelled={job_id}", status_code=303)


@router.get("/jobs/{job_id}/results")
async def job_results(
    request: Request, job_id: str, principal: Viewer, format: str | None = None
) -> Response:
    """A succeeded job's rows: an admin's download, or its owner's (JobNotFound else)."""
    return await results_response(running(request), job_id, _job_viewer(principal), format)


def _job_viewer(principal: Principal) -> JobViewer:
    if principal.auth_off:  # the job API shows everyone every job then
        return EVERY_JOB
    return JobViewer(principal.name, sees_all=principal.is_admin)
