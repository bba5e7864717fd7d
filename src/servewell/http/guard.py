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

from servewell.core.rate import Decision
from servewell.errors import NotReady, RateLimited, ServewellError, Unavailable
from servewell.http.problems import to_reply
from servewell.http.wire import ASGIApp, Receive, Reply, Scope, Send, header
from servewell.observability import ServingMetrics, current_request
from servewell.serving.guard import Guard

AUTHORIZATION = b"authorization"
API_KEY = b"x-api-key"
RATELIMIT_LIMIT = b"ratelimit-limit"
RATELIMIT_REMAINING = b"ratelimit-remaining"
RATELIMIT_RESET = b"ratelimit-reset"


class GuardMiddleware:
    """``guard`` is looked up per request: the server builds it at start-up. It sits
    under :class:`EdgeMiddleware`, which sends the ``RateLimit-*`` headers it leaves on
    the request's record."""

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
        self._limit_values: dict[int, bytes] = {}

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
                token, needed, model = presented_key(scope), needed_scope(scope), model_of(path)
                admitted = (
                    guard.admit_now(token, address, needed, model)
                    if guard.decides_now  # in-process limits: no coroutine to await
                    else await guard.admit(token, address, needed, model)
                )
                decision, caller = admitted.decision, admitted.name
                record = current_request()
                if record is not None:
                    record.caller = caller
        except ServewellError as exc:
            await self.refusal(exc, caller, path).send(send)
            return
        if decision is None:
            await self.app(scope, receive, send)
            return
        extra = self.admitted(caller, decision)
        record = current_request()
        if record is not None:  # the edge, which this layer sits under, sends them
            record.response_headers.extend(extra)
        await self.app(scope, receive, send)

    def refusal(self, exc: ServewellError, caller: str, path: str) -> Reply:
        """The answer to a refused call (counted when a rate limit refused it)."""
        if isinstance(exc, RateLimited | Unavailable):
            outcome = "limited" if isinstance(exc, RateLimited) else "degraded"
            self.metrics.count_rate_limit(getattr(exc, "caller", caller), outcome)
        return to_reply(exc, v2=path.startswith("/v2"))

    def admitted(self, caller: str, decision: Decision) -> list[tuple[bytes, bytes]]:
        """Count an admitted call; its ``RateLimit-*`` headers, as ASGI wants them."""
        self.metrics.count_rate_limit(caller, "degraded" if decision.degraded else "allowed")
        limit = self._limit_values.get(decision.limit)
        if limit is None:
            limit = self._limit_values[decision.limit] = str(decision.limit).encode()
        return [
            (RATELIMIT_LIMIT, limit),
            (RATELIMIT_REMAINING, str(decision.remaining).encode()),
            (RATELIMIT_RESET, str(math.ceil(decision.reset_s)).encode()),
        ]


def presented_key(scope: Scope) -> str | None:
    """``Authorization: Bearer <key>`` or ``X-API-Key: <key>``."""
    return key_from(header(scope, AUTHORIZATION), header(scope, API_KEY))


def key_from(authorization: bytes | None, key: bytes | None) -> str | None:
    """The key in an ``Authorization`` header (Bearer) or else an ``X-API-Key`` header."""
    if authorization is not None:
        kind, _, token = authorization.decode("latin-1").partition(" ")
        if kind.lower() == "bearer" and token.strip():
            return token.strip()
        return None
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
