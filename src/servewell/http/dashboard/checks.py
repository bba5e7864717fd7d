"""The Load tests and doctor page: the newest recorded load test of each model version
(``servewell loadtest`` records them) and the production checklist of ``servewell
doctor``, run on demand (a POST: it reads the registry and asks this server's own
address, off the event loop, one run at a time, bounded; the last report is kept). A
visitor without ``admin`` sees the findings that name API keys without the names."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from servewell.http.dashboard.access import Principal, Viewer, posting, running
from servewell.http.dashboard.checks_data import DoctorRuns, as_seen_by, latest_load_tests
from servewell.http.dashboard.pages import NavItem, render
from servewell.http.guard import DASHBOARD_PREFIX

router = APIRouter()
Poster = Annotated[Principal, Depends(posting)]
"""A signed-in visitor's POST from this site's own form (CSRF token checked)."""
NAV = NavItem("Checks", "/checks", 60)


@router.get("/checks")
async def checks_page(request: Request, principal: Viewer) -> Response:
    tests = await asyncio.to_thread(latest_load_tests, running(request).services)
    report = as_seen_by(_runs(request).last, principal.is_admin)
    return render(request, "checks.html", principal, load_tests=tests, report=report)


@router.post("/checks/doctor")
async def run_doctor(request: Request, principal: Poster) -> Response:
    """Run the checklist (any signed-in visitor: it changes nothing; the CSRF token is
    checked as for every POST), then show the page."""
    await _runs(request).run(running(request), own_address(request))
    return RedirectResponse(f"{DASHBOARD_PREFIX}/checks#doctor", status_code=303)


def _runs(request: Request) -> DoctorRuns:
    runs: DoctorRuns = request.app.state.doctor  # one per dashboard app (app.py)
    return runs


def own_address(request: Request) -> str | None:
    """Where this server answers on the connection the request came in on (the local
    socket, never the Host header a client sends); None when not over a socket."""
    server = request.scope.get("server")
    if not server or server[1] is None:
        return None
    host, port = server
    host = f"[{host}]" if ":" in host else host
    return f"{request.url.scheme}://{host}:{port}"
