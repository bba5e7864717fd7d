"""The guard layer of the HTTP app: API keys, scopes and rate limits before any route
that is not an inference one (the gateway guards those itself, the same way).

Open paths (probes, ``/metrics``, the API docs) need no key but are limited per client
address; state-changing calls under an admin prefix (``/admin/``, ``/v2/repository/``)
need the ``admin`` scope; labels sent to ``/v1/models/{name}/feedback`` need ``feedback``;
everything else needs ``predict`` (on the model a path names). The dashboard (``/ui``)
signs its visitors in with a session cookie itself (``http.dashboard``): here it is only
limited per client address.
Allowed answers carry the ``RateLimit-*`` headers; refusals are 401, 403, 429 (with
``Retry-After``) or 503.
"""

from __future__ import annotations

from collections.abc import Callable

from servewell.errors import ServewellError
from servewell.http.problems import to_reply
from servewell.http.wire import ASGIApp, Receive, Scope, Send, header, send_reply
from servewell.observability import current_request
from servewell.serving.admission import API_KEY, AUTHORIZATION, Admission


class GuardMiddleware:
    """``admission`` is looked up per request (the server builds it at start-up; before,
    it raises NotReady). It sits under :class:`EdgeMiddleware`, which sends the
    ``RateLimit-*`` headers it leaves on the request's record."""

    def __init__(self, app: ASGIApp, admission: Callable[[], Admission]) -> None:
        self.app = app
        self.admission = admission

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        client = scope.get("client")
        record = current_request()
        if is_dashboard(path):  # it signs its visitors in itself (``http.dashboard``)
            await self._pass_dashboard(scope, receive, send, client[0] if client else "unknown")
            return
        try:
            extra = await self.admission().admit(
                record,
                path,
                (header(scope, AUTHORIZATION), header(scope, API_KEY)),
                client[0] if client else "unknown",
                needed_scope(scope),
                model_of(path),
            )
        except ServewellError as exc:
            await send_reply(to_reply(exc, v2=path.startswith("/v2")), send)
            return
        if extra and record is not None:  # the edge, which this layer sits under, sends them
            record.response_headers.extend(extra)
        await self.app(scope, receive, send)

    async def _pass_dashboard(
        self, scope: Scope, receive: Receive, send: Send, client: str
    ) -> None:
        """A dashboard request: limited per client address like an open path."""
        record = current_request()
        try:
            extra = await self.admission().anonymous(client)
        except ServewellError as exc:
            await send_reply(to_reply(exc, v2=False), send)
            return
        if extra and record is not None:
            record.response_headers.extend(extra)
        await self.app(scope, receive, send)


#: Where the dashboard lives: its pages check a session cookie, not a key header.
DASHBOARD_PREFIX = "/ui"


def is_dashboard(path: str) -> bool:
    return path == DASHBOARD_PREFIX or path.startswith(DASHBOARD_PREFIX + "/")


#: Where routes that change state live (the V2 model-repository extension, servewell's
#: own admin API): changing them needs the ``admin`` scope.
ADMIN_PREFIXES = ("/admin/", "/v2/repository/")
#: Ground-truth labels (``POST /v1/models/{name}/feedback``) need the ``feedback`` scope.
FEEDBACK_SUFFIX = "/feedback"


def needed_scope(scope: Scope) -> str:
    """``admin`` for a state-changing call under an admin prefix, ``feedback`` for
    labels, else ``predict``: an unknown route then answers 404 to a valid key, not a
    misleading 403."""
    method: str = scope["method"]
    path: str = scope["path"]
    if method not in ("GET", "HEAD", "OPTIONS"):
        if path.startswith(ADMIN_PREFIXES):
            return "admin"
        if path.startswith("/v1/models/") and path.endswith(FEEDBACK_SUFFIX):
            return "feedback"
    return "predict"


def model_of(path: str) -> str | None:
    """The model a ``/v2/models/{name}...`` or ``/v1/models/{name}...`` path names."""
    for prefix in ("/v2/models/", "/v1/models/"):
        if path.startswith(prefix):
            rest = path[len(prefix) :]
            name = rest.split("/", 1)[0].split(":", 1)[0]
            return name or None
    return None
