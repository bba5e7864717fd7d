"""Signing in to the dashboard with an API key, once, and out again.

The key pasted into the form goes through the server's own admission step (the lockout
of addresses that failed too often, the key ring, the ``viewer`` scope, the key's rate
limit), exactly as a key header would; the answer sets the session cookie
(``http.dashboard.session``): ``HttpOnly``, ``SameSite=Strict``, ``Secure`` when the
request came over TLS, scoped to ``/ui``. The key itself is never stored or shown.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from servewell.errors import ServewellError
from servewell.http.dashboard import session
from servewell.http.dashboard.access import (
    NOBODY,
    VIEWER,
    check_every_model,
    check_origin,
    end_session,
    keyring_of,
    posting,
    running,
    signing_key,
)
from servewell.http.dashboard.pages import render
from servewell.http.guard import DASHBOARD_PREFIX
from servewell.http.problems import retry_headers
from servewell.observability import current_request

router = APIRouter()

SIGN_IN = "/sign-in"
#: Where a visitor lands after signing in, unless the sign-in page was given another.
HOME = DASHBOARD_PREFIX + "/models"
#: What the sign-in page says about why a visitor is there (``?why=`` names one): never
#: text from the link itself, which another site could write ("paste your key at ...").
REASONS = {
    "signed-out": "signed out",
    "required": "sign in with an API key to see the dashboard",
    "ended": "the dashboard session has ended (it expired or its key was revoked): sign in again",
}


@router.get(SIGN_IN)
def sign_in_page(request: Request, next: str = HOME, why: str | None = None) -> Response:
    """The form to paste a key into (straight to the dashboard with auth off)."""
    if keyring_of(running(request)) is None:
        return RedirectResponse(safe_next(next), status_code=303)
    message = REASONS.get(why or "")
    return render(request, "sign_in.html", NOBODY, next=safe_next(next), message=message)


@router.post(SIGN_IN)
async def sign_in(
    request: Request, key: Annotated[str, Form()] = "", next: Annotated[str, Form()] = HOME
) -> Response:
    """Check the key as the API would, then set the session cookie and go on."""
    check_origin(request)
    server = running(request)
    keyring = keyring_of(server)
    if keyring is None:
        return RedirectResponse(safe_next(next), status_code=303)
    client = request.client.host if request.client else "unknown"
    token = key.strip()
    try:
        await server.admission.admit(
            current_request(), request.url.path, (None, token.encode()), client, VIEWER, None
        )
        found = keyring.authenticate(token)
        check_every_model(found)
    except ServewellError as exc:
        page = render(
            request,
            "sign_in.html",
            NOBODY,
            status=int(exc.status),
            next=safe_next(next),
            message=exc.message,
        )
        for name, value in retry_headers(exc):  # a lockout's 429 says when, as the API's
            page.headers.append(name.decode(), value.decode())
        return page
    ttl_s = server.settings.auth.session_ttl_s
    new = session.issue(found.key_id, signing_key(server, found), ttl_s)
    answer = RedirectResponse(safe_next(next), status_code=303)
    answer.set_cookie(
        session.COOKIE,
        new.to_cookie(),
        max_age=int(ttl_s),
        path=DASHBOARD_PREFIX,
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )
    return answer


@router.post("/sign-out")
async def sign_out(request: Request) -> Response:
    """End the session (the form carries its CSRF token) for every worker and replica,
    not only this browser: a copy of the cookie is refused from now on."""
    await posting(request)  # a signed-in visitor: the session's cookie is authentic
    await end_session(request)
    return signed_out(why="signed-out")


def signed_out(why: str | None = None, next: str | None = None) -> RedirectResponse:
    """To the sign-in page, the session cookie cleared; ``why``: one of :data:`REASONS`."""
    query = urlencode({"why": why, "next": next} if next else {"why": why} if why else {})
    target = DASHBOARD_PREFIX + SIGN_IN + ("?" + query if query else "")
    answer = RedirectResponse(target, status_code=303)
    answer.delete_cookie(session.COOKIE, path=DASHBOARD_PREFIX, httponly=True, samesite="strict")
    return answer


def safe_next(target: str) -> str:
    """``target`` when it is a dashboard path of this server, else the home page (no
    open redirect to another site)."""
    ok = target.startswith(DASHBOARD_PREFIX + "/") and not target.startswith(
        (DASHBOARD_PREFIX + "//", DASHBOARD_PREFIX + "/\\")
    )
    return target if ok and "\\" not in target and SIGN_IN not in target else HOME
