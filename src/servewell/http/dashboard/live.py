"""The Live page: request rate, p50/p99 latency, error rate by status, rows per model
call, cache hit ratio, queue depth and breaker state per model version, from the
server's own metrics (``observability/live.py``: a reading every 2 s, the last 10
minutes). The page draws what ``GET /ui/api/live`` answers and polls it (``live.js``);
each chart has the figures as a table beside it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from servewell.core.ref import check_name
from servewell.http.dashboard.access import Viewer, running
from servewell.http.dashboard.live_data import CHARTS, live_data, recent_rows
from servewell.http.dashboard.pages import NavItem, render

router = APIRouter()
NAV = NavItem("Live", "/live", 20)


@router.get("/live")
async def live_page(request: Request, principal: Viewer, model: str | None = None) -> Response:
    if model is not None:
        check_name(model)
    data = live_data(running(request), model)
    return render(
        request,
        "live.html",
        principal,
        data=data,
        charts=CHARTS,
        tables=recent_rows(data),
        model=model,
    )


@router.get("/api/live")
async def live_json(principal: Viewer, request: Request, model: str | None = None) -> Any:
    """The points of every served version (``model``'s alone), oldest first."""
    if model is not None:
        check_name(model)
    return live_data(running(request), model)
