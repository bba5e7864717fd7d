"""Who is looking at the dashboard, as FastAPI dependencies.

``signed_in`` (every page and JSON endpoint): the session cookie, checked against the
server's key ring on every request, so a revoked key is signed out within the ring's
refresh interval, and against the sessions signed out (``serving/ended_sessions.py``,
re-read at the same interval), so a copied cookie ends with its sign-out; Unauthorized
without one (pages answer it with a redirect to the
sign-in page); a key limited to some models (``--models``) is refused, since the
dashboard shows every model. ``acting`` (every POST of an action): ``signed_in``, plus
the ``admin`` scope, a same-origin ``Origin`` header when the browser sends one and the
session's CSRF token (form field ``csrf_token`` or header ``X-CSRF-Token``); Forbidden
otherwise.

With authentication off (``--no-auth``) there are no keys to sign in with: everyone is
an anonymous viewer, every page shows a warning, and no action is allowed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Request

from servewell.core.apikey import grants
from servewell.errors import Forbidden, Unauthorized
from servewell.http.dashboard import session
from servewell.http.running import RunningServer
from servewell.registry.keys import ApiKey
from servewell.serving.keyring import KeyRing

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
#: The scope every dashboard page needs (``admin`` includes it).
VIEWER = "viewer"


@dataclass(frozen=True, slots=True)
class Principal:
    """The visitor: the key they signed in with (never its secret)."""

    name: str
    """The key's name; ``anonymous`` with authentication off."""
    key_id: str | None
    scopes: tuple[str, ...]
    csrf_token: str
    """Put in every form (``csrf_token``) or sent as ``X-CSRF-Token``."""
    auth_off: bool = False

    @property
    def is_admin(self) -> bool:
        """May act (roll back, create and revoke keys): show the buttons."""
        return not self.auth_off and "admin" in self.scopes

    @property
    def who(self) -> str:
        """The author of a change, as the registry's histories record it."""
        return f"key:{self.name}"


ANONYMOUS = Principal("anonymous", None, (VIEWER,), "", auth_off=True)
"""Every visitor with authentication off: reads, never acts."""
NOBODY = Principal("", None, (), "")
"""The visitor of the sign-in page: nobody yet (no navigation, no CSRF token)."""


def running(request: Request) -> RunningServer:
    """The started server (NotReady before start-up), for a route."""
    server: RunningServer = request.app.state.running()
    return server


def keyring_of(server: RunningServer) -> KeyRing | None:
    return server.protection.guard.keyring


def signed_in(request: Request) -> Principal:
    """The visitor of a page (see the module docstring); Unauthorized when not signed in."""
    return _visit(request)[0]


async def acting(request: Request) -> Principal:
    """The visitor of an action (see the module docstring); Forbidden when they may not."""
    principal = await posting(request)
    if not principal.is_admin:
        raise Forbidden(f"the dashboard is read-only for '{principal.name}': it needs 'admin'")
    return principal


async def posting(request: Request) -> Principal:
    """The signed-in visitor of a POST from this site's own form (signing out, any
    action): Forbidden for another site's ``Origin`` or a missing or wrong CSRF token."""
    principal, found, signing = _visit(request)
    if found is None:
        raise Forbidden("the dashboard is read-only: authentication is off on this server")
    check_origin(request)
    token = request.headers.get(CSRF_HEADER)
    if token is None and _is_form(request):
        value = (await request.form()).get(CSRF_FIELD)
        token = value if isinstance(value, str) else None
    if not session.csrf_matches(found, signing, token):
        raise Forbidden("the form's CSRF token is missing or wrong: reload the page and retry")
    return principal


def _visit(request: Request) -> tuple[Principal, session.Session | None, bytes]:
    """The visitor, their session and its signing key (none with authentication off)."""
    server = running(request)
    keyring = keyring_of(server)
    if keyring is None:
        return ANONYMOUS, None, b""
    found = session.parse(request.cookies.get(session.COOKIE))
    if found is None:
        raise Unauthorized("sign in with an API key to see the dashboard")
    ended = Unauthorized("the dashboard session has ended: sign in again")
    try:  # the same answer for an unknown or revoked key as for a forged cookie: a
        key = keyring.active(found.key_id)  # cookie not yet checked learns no key's name
    except Unauthorized:
        raise ended from None
    signing = signing_key(server, key)
    if not session.is_authentic(found, signing) or found.is_expired() or _signed_out(server, found):
        raise ended
    if not grants(key.scopes, VIEWER):
        raise Forbidden(f"the API key '{key.name}' lacks the 'viewer' scope")
    check_every_model(key)
    principal = Principal(key.name, key.key_id, key.scopes, session.csrf_token(found, signing))
    return principal, found, signing


def _signed_out(server: RunningServer, found: session.Session) -> bool:
    ended = server.protection.ended_sessions
    return ended is not None and ended.is_ended(found.nonce)


async def end_session(request: Request) -> None:
    """Sign the visitor's session out for every worker and replica (its cookie is
    refused from now on, here at once, elsewhere within the ring's refresh interval)."""
    ended = running(request).protection.ended_sessions
    found = session.parse(request.cookies.get(session.COOKIE))
    if ended is not None and found is not None:
        await ended.end(found.nonce, found.expires_at)


def check_every_model(key: ApiKey) -> None:
    """Forbidden for a key limited to some models: the dashboard shows every model (its
    pages, live figures, drift and stored reports), which such a key may not read."""
    if key.models is not None:
        raise Forbidden(
            f"the API key '{key.name}' is limited to some models ({', '.join(key.models)}) "
            "and the dashboard shows every model: sign in with a key for all of them"
        )


def check_origin(request: Request) -> None:
    """Forbidden for a POST that a browser says comes from another site."""
    origin = request.headers.get("origin")
    if origin is None:  # not sent by every browser on same-origin POSTs: the token decides
        return
    if urlsplit(origin).netloc != request.headers.get("host", ""):
        raise Forbidden("the request comes from another site (its Origin is not this server)")


def signing_key(server: RunningServer, key: ApiKey) -> bytes:
    return session.signing_key(key.secret_hash, server.settings.auth.session_secret)


def _is_form(request: Request) -> bool:
    kind = request.headers.get("content-type", "")
    return kind.startswith(("application/x-www-form-urlencoded", "multipart/form-data"))


Viewer = Annotated[Principal, Depends(signed_in)]
"""A route parameter: the signed-in visitor (every page and JSON endpoint)."""
Admin = Annotated[Principal, Depends(acting)]
"""A route parameter: the visitor of an action (admin, same origin, CSRF token checked)."""
