"""Rendering dashboard pages: the Jinja2 templates shipped in the package, the
navigation each page module adds itself to, the security headers every answer under
``/ui`` carries, and HEAD answered as GET without a body."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape

from servewell.http.dashboard.access import Principal
from servewell.http.guard import DASHBOARD_PREFIX
from servewell.http.wire import ASGIApp, Message, Receive, Scope, Send

#: Every dashboard answer's Content-Security-Policy: scripts and styles from the
#: dashboard's own static files only (no inline script, no CDN).
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cache-control", b"no-store"),
]


@dataclass(frozen=True, slots=True)
class NavItem:
    """A page in the navigation: its label, its path under ``/ui``, its place."""

    label: str
    path: str
    order: int
    admin_only: bool = False


def environment() -> Environment:
    """The templates (``http/dashboard/templates``), HTML-escaped."""
    env = Environment(
        loader=PackageLoader("servewell.http.dashboard", "templates"),
        autoescape=select_autoescape(["html", "svg"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["ui"] = DASHBOARD_PREFIX
    env.filters["bytes"] = format_bytes
    env.filters["figure"] = format_figure
    env.filters["epoch"] = format_epoch
    return env


def render(
    request: Request,
    template: str,
    principal: Principal,
    *,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    """``template`` with the base template's context: the visitor, the navigation (the
    page whose path starts the request's is current), the CSRF token."""
    state = request.app.state
    here = request.url.path.removeprefix(DASHBOARD_PREFIX) or "/"
    nav = [
        {"label": item.label, "href": DASHBOARD_PREFIX + item.path, "current": _is_at(here, item)}
        for item in state.nav
        if principal.name and (principal.is_admin or not item.admin_only)
    ]
    html = state.templates.get_template(template).render(
        principal=principal, csrf_token=principal.csrf_token, nav=nav, **context
    )
    return HTMLResponse(html, status_code=status)


def _is_at(here: str, item: NavItem) -> bool:
    return here == item.path or here.startswith(item.path.rstrip("/") + "/")


class SecurityHeaders:
    """Adds :data:`CSP` and its companions to every answer that has not set its own
    (a stored report, served sandboxed, sets a stricter one)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                headers.extend(pair for pair in _HEADERS if pair[0] not in present)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


class HeadAsGet:
    """Answers HEAD as GET without the body (same status and headers, Content-Length
    included), as HTTP asks of every GET route; FastAPI's routes answer only the methods
    they name. A dashboard GET changes nothing, so running it for a HEAD is safe."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        done = False

        async def without_body(message: Message) -> None:
            nonlocal done
            if message["type"] == "http.response.body":
                if done:
                    return  # the rest of a streamed body: a HEAD gets none of it
                done = True
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, without_body)


def format_bytes(size: int | None) -> str:
    """``1.4 MB``; an em dash for an unknown size."""
    if size is None:
        return "—"
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"


def format_figure(value: Any) -> str:
    """A metric for a table: floats to 4 significant digits, the rest as text."""
    if isinstance(value, bool) or value is None:
        return "—" if value is None else str(value).lower()
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def format_epoch(seconds: float | None) -> str:
    """``2026-12-01 23:04:05`` (UTC) for seconds since the epoch; an em dash for None."""
    if seconds is None:
        return "—"
    from datetime import UTC, datetime

    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S")
