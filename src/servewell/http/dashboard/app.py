"""The dashboard as its own small FastAPI app, mounted by ``http.routes`` at ``/ui``.

Each page module has a ``router`` (its routes, relative to ``/ui``) and a ``NAV``
(its place in the navigation); :data:`ROUTERS` and :data:`NAV` list them. Pages answer
HTML; JSON endpoints live under ``/ui/api/`` and answer errors as JSON. A visitor who is
not signed in is sent to the sign-in page (JSON endpoints: 401).
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from servewell.errors import InvalidInput, NotFound, ServewellError, Unauthorized
from servewell.http.dashboard import (
    artifacts,
    checks,
    jobs,
    keys,
    live,
    models,
    monitoring,
    session,
    signin,
)
from servewell.http.dashboard.access import NOBODY
from servewell.http.dashboard.checks_data import DoctorRuns
from servewell.http.dashboard.pages import (
    HeadAsGet,
    NavItem,
    SecurityHeaders,
    environment,
    render,
)
from servewell.http.guard import DASHBOARD_PREFIX
from servewell.http.problems import to_reply
from servewell.http.wire import ASGIApp

#: Every page module's routes.
ROUTERS = (
    signin.router,
    models.router,
    artifacts.router,
    keys.router,
    live.router,
    monitoring.router,
    jobs.router,
    checks.router,
)
#: The navigation, in ``order``.
NAV: tuple[NavItem, ...] = (models.NAV, keys.NAV, live.NAV, monitoring.NAV, jobs.NAV, checks.NAV)
#: Where JSON endpoints live (their errors are JSON too).
API_PREFIX = DASHBOARD_PREFIX + "/api/"


def build_dashboard(running: Any) -> ASGIApp:
    """The dashboard app; ``running`` gives the started server (NotReady before)."""
    ui = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    ui.state.running = running
    ui.state.templates = environment()
    ui.state.nav = sorted(NAV, key=lambda item: item.order)
    ui.state.doctor = DoctorRuns()  # the checklist's last report (checks.py)
    for router in ROUTERS:
        ui.include_router(router)
    ui.mount(
        "/static",
        StaticFiles(packages=[("servewell.http.dashboard", "static")]),
        name="static",
    )

    @ui.get("/", include_in_schema=False)
    def home() -> Response:
        return RedirectResponse(signin.HOME, status_code=303)

    _add_error_handlers(ui)
    return HeadAsGet(SecurityHeaders(ui))


def _add_error_handlers(ui: FastAPI) -> None:
    async def servewell_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ServewellError)
        if isinstance(exc, Unauthorized) and not _wants_json(request):
            here = request.url.path if request.method == "GET" else None
            why = "ended" if request.cookies.get(session.COOKIE) else "required"
            return signin.signed_out(why=why, next=here)
        return _error(request, exc)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 404:
            return _error(request, NotFound(f"no dashboard page at {request.url.path}"))
        return _error(request, InvalidInput(str(exc.detail)), status=exc.status_code)

    async def validation_error(request: Request, exc: Exception) -> Response:
        return _error(request, InvalidInput(f"invalid request: {exc}"))

    ui.add_exception_handler(ServewellError, servewell_error)
    ui.add_exception_handler(HTTPException, http_error)
    ui.add_exception_handler(RequestValidationError, validation_error)


def _error(request: Request, exc: ServewellError, status: int | None = None) -> Response:
    """The error as JSON (``/ui/api/``) or as a page saying what went wrong."""
    reply = to_reply(exc)  # logs what is not exposed; says only that it failed
    status = status or reply.status
    body = orjson.loads(reply.body)
    if _wants_json(request):
        return JSONResponse(body, status)
    page: HTMLResponse = render(request, "error.html", NOBODY, status=status, message=body["error"])
    return page


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith(API_PREFIX)
