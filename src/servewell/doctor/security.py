"""Security: keys on, never a public address without them, CORS not ``*`` with
credentials, body-size and row limits, TLS in front (servewell speaks plain HTTP; a
proxy or load balancer terminates TLS, so this can only warn and say how)."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from servewell.core.address import is_loopback
from servewell.doctor.finding import Finding, failed, passed, warned
from servewell.doctor.live import MODELS_PATH, WITH_KEY

if TYPE_CHECKING:
    from servewell.doctor.context import Context

ITEM = "security"
#: Larger bodies than this are a choice worth a look (the default is 16 MiB).
LARGE_BODY_BYTES = 64 * 1024 * 1024


class SecurityCheck:
    """Auth, bind address, CORS, request limits, TLS."""

    item = ITEM

    def run(self, context: Context) -> list[Finding]:
        return [_auth(context), _cors(context), _limits(context), _tls(context)]


def _auth(context: Context) -> Finding:
    host = _host(context)
    if context.auth_on:
        return passed(f"{ITEM}: auth", f"API keys required ({context.auth_seen})")
    where = "a loopback address" if is_loopback(host) else f"{host}, reachable by others"
    return failed(
        f"{ITEM}: auth",
        f"API keys are off ({context.auth_seen}), serving on {where}: anyone who "
        "reaches it may call every model",
        "serve without --no-auth (auth.enabled: true) and give callers keys: "
        "servewell keys create --name <app> --scopes predict",
    )


def _host(context: Context) -> str:
    if context.live is not None:
        return urlsplit(context.live.url).hostname or context.live.url
    return context.settings.server.host


def _cors(context: Context) -> Finding:
    """servewell sends no CORS headers itself; something in front might."""
    if context.live is None:
        return passed(
            f"{ITEM}: CORS", "servewell sends no CORS headers (cross-origin reads refused)"
        )
    answer = context.live.answer(WITH_KEY if context.live.api_key else MODELS_PATH)
    origin = answer.headers.get("access-control-allow-origin")
    credentials = answer.headers.get("access-control-allow-credentials", "").lower() == "true"
    if origin == "*" and credentials:
        return failed(
            f"{ITEM}: CORS",
            "Access-Control-Allow-Origin: * with Allow-Credentials: true",
            "name the allowed origins in the proxy's CORS rule, never '*' with credentials",
        )
    found = f"Access-Control-Allow-Origin: {origin}" if origin else "no CORS headers sent"
    return passed(f"{ITEM}: CORS", found)


def _limits(context: Context) -> Finding:
    body = context.settings.server.max_body_bytes
    rows = context.settings.validation.max_rows
    found = f"bodies up to {body / 2**20:g} MiB, {rows} rows a request"
    if body > LARGE_BODY_BYTES:
        return warned(
            f"{ITEM}: request limits",
            found + ": a few large bodies hold a lot of memory",
            "server: {max_body_bytes: 16777216} in servewell.yaml",
        )
    return passed(f"{ITEM}: request limits", found)


def _tls(context: Context) -> Finding:
    if context.live is not None and context.live.url.startswith("https://"):
        return passed(f"{ITEM}: TLS", f"{context.live.url} answers over HTTPS")
    if context.settings.server.forwarded_allow_ips:
        trusted = ", ".join(context.settings.server.forwarded_allow_ips)
        return passed(f"{ITEM}: TLS", f"behind a trusted proxy ({trusted}); it terminates TLS")
    return warned(
        f"{ITEM}: TLS",
        "servewell speaks plain HTTP and no proxy is named in front of it",
        "terminate TLS in a reverse proxy or load balancer (nginx, Caddy, a cloud LB) and "
        "name it in server.forwarded_allow_ips",
    )
