"""The Monitoring page: one model's drift per feature against its training reference
(each test, its statistic and verdict), quality over time with label coverage, the
prediction distribution against the reference's, and the alert rules (pending, firing,
resolved), read by the functions ``servewell monitor`` and ``servewell alerts`` use."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import Response

from servewell.core.ref import check_name
from servewell.http.dashboard.access import Viewer, running
from servewell.http.dashboard.monitoring_data import DEFAULT_WINDOW, monitoring_data, over_time
from servewell.http.dashboard.pages import NavItem, render

router = APIRouter()
NAV = NavItem("Monitoring", "/monitoring", 30)
#: The windows offered in the page's form (any ``--window`` text works in the URL).
WINDOWS = ("1h", "6h", "1d", "7d", "30d", "1000")


@router.get("/monitoring")
async def monitoring_page(
    request: Request, principal: Viewer, model: str | None = None, window: str = DEFAULT_WINDOW
) -> Response:
    if model:
        check_name(model)
    data = await asyncio.to_thread(
        monitoring_data, running(request).services, model or None, window
    )
    groups = data.report["groups"] if data.report else []
    charts = [over_time(group, data.report) for group in groups] if data.report else []
    return render(
        request,
        "monitoring.html",
        principal,
        data=data,
        groups=list(zip(groups, charts, strict=True)),
        windows=WINDOWS,
    )
