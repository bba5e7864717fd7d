"""The guard layer of the HTTP app: API keys, scopes and rate limits before any route.

Open paths (probes, ``/metrics``, the API docs) need no key but are limited per client
address; state-changing calls under an admin prefix (``/admin/``, ``/v2/repository/``)
need the ``admin`` scope; everything else needs ``predict`` (on the model a path names).
Allowed answers carry the ``RateLimit-*`` headers; refusals are 401, 403, 429 (with
``Retry-After``) or 503.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from servewell.errors import NotReady, RateLimited, ServewellError, Unavailable
from servewell.http.problems import to_reply
from servewell.http.wire import ASGIApp, Message, Receive, Scope, Send, header
from servewell.observability import ServingMetrics, current_request
from servewell.serving.guard import Guard

AUTHORIZATION = b"authorization"
API_KEY = b"x-api-key"


class GuardMiddleware:
    """``guard`` is looked up per request: the server builds it at start-up."""

    def __init__(
        self,
        app: ASGIApp,
        guard: Callable[[], Guard | None],
        open_paths: list[str],
        metrics: ServingMetrics,
    ) -> None:
        self.app = app
        self.guard = guard
        self.open_paths = frozenset(open_paths)
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        client = scope.get("client")
        address = client[0] if client else "unknown"
        guard = self.guard()
        caller = f"ip:{address}"
        if guard is not None and guard.admits_everyone:
            if path not in self.open_paths:
                record = current_request()
                if record is not None:
                    record.caller = caller
            await self.app(scope, receive, send)
            return
        try:
            if guard is None:
                raise NotReady("*")
            if path in self.open_paths:
                decision = await guard.admit_anonymous(address)
            else:
                admitted = await guard.admit(
                    presented_key(scope), address, needed_scope(scope), model_of(path)
                )
                decision, caller = admitted.decision, admitted.name
                record = current_request()
                if record is not None:
                    record.caller = caller
        except ServewellError as exc:
            if isinstance(exc, RateLimited | Unavailable):
                outcome = "limited" if isinstance(exc, RateLimited) else "degraded"
                self.metrics.count_rate_limit(getattr(exc, "caller", caller), outcome)
            await to_reply(exc, v2=path.startswith("/v2")).send(send)
            return
        if decision is not None:
            self.metrics.count_rate_limit(caller, "degraded" if decision.degraded else "allowed")
        if decision is None:
            await self.app(scope, receive, send)
            return
        extra = [
            (b"ratelimit-limit", str(decision.limit).encode()),
            (b"ratelimit-remaining", str(decision.remaining).encode()),
            (b"ratelimit-reset", str(math.ceil(decision.reset_s)).encode()),
        ]  # decision.headers(), as ASGI wants them

        async def send_with_limits(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *extra]
            await send(message)

        await self.app(scope, receive, send_with_limits)


def presented_key(scope: Scope) -> str | None:
    """``Authorization: Bearer <key>`` or ``X-API-Key: <key>``."""
    authorization = header(scope, AUTHORIZATION)
    if authorization is not None:
        kind, _, token = authorization.decode("latin-1").partition(" ")
        if kind.lower() == "bearer" and token.strip():
            return token.strip()
        return None
    key = header(scope, API_KEY)
    return key.decode("latin-1").strip() if key else None


#: Where routes that change state live (the V2 model-repository extension, servewell's
#: own admin API): changing them needs the ``admin`` scope.
ADMIN_PREFIXES = ("/admin/", "/v2/repository/")


def needed_scope(scope: Scope) -> str:
    """``admin`` for a state-changing call under an admin prefix, else ``predict``: an
    unknown route then answers 404 to a valid key, not a misleading 403."""
    method: str = scope["method"]
    path: str = scope["path"]
    if method not in ("GET", "HEAD", "OPTIONS") and path.startswith(ADMIN_PREFIXES):
        return "admin"
    return "predict"


def model_of(path: str) -> str | None:
    """The model a ``/v2/models/{name}...`` or ``/v1/models/{name}...`` path names."""
    for prefix in ("/v2/models/", "/v1/models/"):
        if path.startswith(prefix):
            rest = path[len(prefix) :]
            name = rest.split("/", 1)[0].split(":", 1)[0]
            return name or None
    return None
