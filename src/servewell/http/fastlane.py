"""Cache hits answered inside the HTTP protocol, before any ASGI machinery runs.

A hit needs no model, so with the in-process response cache and rate limiter nothing on
its way has to wait: :class:`FastLane` answers it synchronously from the connection's
parser callback (``http.protocol``), skipping the ASGI scope, task, messages and
middleware closures, which cost more than everything the hit itself does. It takes the
ASGI path's steps in the same order with the same outcome: route, resolve the version,
look the entry up, authenticate and rate-limit (refusals are answered here too, since a
bucket may have been touched), count the hit, then the metrics and the access line.

Anything else (a miss, ``Cache-Control``, proxy headers, an unknown model, the Redis
backends) returns None *before anything is counted or changed*, and the protocol hands
the request to the ASGI app as usual.
"""

from __future__ import annotations

import http
import time
from typing import TYPE_CHECKING

from servewell.cache import MemoryResponseCache
from servewell.errors import ServewellError
from servewell.http.guard import API_KEY, AUTHORIZATION, GuardMiddleware, key_from
from servewell.http.middleware import REQUEST_ID, EdgeMiddleware, request_id_from
from servewell.http.targets import InferTarget, match_infer, version_number
from servewell.http.v2 import HEADER_LENGTH
from servewell.http.wire import entry_message
from servewell.observability import RequestRecord, bind_request, unbind_request

if TYPE_CHECKING:
    from servewell.http.app import ServewellApp
    from servewell.serving.deployment import Deployment

CONTENT_TYPE = b"content-type"
#: Headers that change how a request is handled (a cache bypass, the client's address
#: as a proxy tells it): such requests take the ASGI path.
ASGI_ONLY = frozenset(
    (b"cache-control", b"pragma", b"x-forwarded-for", b"x-forwarded-proto", b"forwarded")
)
HIT_LINE = b"x-cache: hit\r\n"
#: The ASGI scope key under which the protocol passes on the cache key the lane computed
#: for a request it declined (so the app does not hash the body again).
CACHE_KEY = "servewell.cache_key"
STATUS_LINES = {
    status.value: f"HTTP/1.1 {status.value} {status.phrase}\r\n".encode()
    for status in http.HTTPStatus
}


class FastLane:
    def __init__(self, app: ServewellApp, edge: EdgeMiddleware, guard: GuardMiddleware) -> None:
        self.app = app
        self.edge = edge
        self.guard = guard
        self.answered = 0
        """Requests answered here (hits and refusals), for tests and curiosity."""
        self.declined_key: str | None = None
        """The cache key of the last request declined after computing it."""
        self._may_answer: bool | None = None
        self._defaults: list[tuple[bytes, bytes]] | None = None
        self._default_bytes = b""

    @property
    def may_answer(self) -> bool:
        """Whether this server's setup lets the lane answer anything: an in-process
        response cache and rate limiter. Known once the app has started."""
        if self._may_answer is None:
            protection = self.app.protection
            if protection is None or self.app.predictor is None:
                return False  # not started yet
            cache = protection.cache.cache if protection.cache is not None else None
            self._may_answer = isinstance(cache, MemoryResponseCache) and (
                protection.guard.decides_now
            )
        return self._may_answer

    def answer(
        self,
        path: str,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        client: str | None,
        default_headers: list[tuple[bytes, bytes]],
    ) -> bytes | None:
        """The whole HTTP/1.1 response to ``POST path`` when it is a cache hit (or refused
        by the guard on the way); None when the ASGI app must answer it."""
        started = time.perf_counter()
        self.declined_key = None
        protection, predictor = self.app.protection, self.app.predictor
        if not self.may_answer or protection is None or predictor is None:
            return None
        layer = protection.cache
        assert layer is not None
        cache = layer.cache
        assert isinstance(cache, MemoryResponseCache)
        target = match_infer(path)
        if target is None or path in self.guard.open_paths:
            return None
        named = dict(headers)
        if len(named) != len(headers) or not ASGI_ONLY.isdisjoint(named):
            return None  # a repeated header, or one that changes the handling
        try:
            deployment = predictor.pool.get(target.model, version_number(target))
        except ServewellError:
            return None
        key = layer.key_for(
            deployment.version,
            target.protocol,
            named.get(CONTENT_TYPE),
            named.get(HEADER_LENGTH),
            body,
        )
        entry = None if key is None else cache.peek(key)
        message = None if entry is None else entry_message(entry)
        if key is None or message is None:
            self.declined_key = key
            return None
        # Model and version are filled in once admitted: a refusal's record names none,
        # as on the ASGI path, where the guard refuses before the model is resolved.
        record = RequestRecord(
            request_id_from(named.get(REQUEST_ID)), "POST", path, protocol=target.protocol
        )
        token = bind_request(record)
        try:
            headers_and_message = self._hit_or_refusal(
                target,
                deployment,
                record,
                cache,
                key,
                message,
                key_from(named.get(AUTHORIZATION), named.get(API_KEY)),
                client,
            )
        finally:
            unbind_request(token)
        response = b"".join(
            (
                STATUS_LINES[record.status],
                self._default_lines(default_headers),
                b"x-request-id: " + record.request_id.encode() + b"\r\n",
                *headers_and_message,
            )
        )
        self.edge.finish(record, time.perf_counter() - started, client)
        self.answered += 1
        return response

    def _default_lines(self, default_headers: list[tuple[bytes, bytes]]) -> bytes:
        """uvicorn's default headers (date, server) as lines; uvicorn makes a new list
        when the date changes, once a second, so the lines are made once per list."""
        if default_headers is not self._defaults:
            self._defaults = default_headers
            self._default_bytes = b"".join(
                name + b": " + value + b"\r\n" for name, value in default_headers
            )
        return self._default_bytes

    def _hit_or_refusal(
        self,
        target: InferTarget,
        deployment: Deployment,
        record: RequestRecord,
        cache: MemoryResponseCache,
        key: str,
        message: memoryview,
        token: str | None,
        client: str | None,
    ) -> tuple[bytes | memoryview, ...]:
        """The rest of the answer after the status line and the request id: the cached
        one's headers and message, or the guard's refusal."""
        assert self.app.protection is not None
        guard = self.app.protection.guard
        address = client or "unknown"
        limit_lines = b""
        if guard.admits_everyone:
            record.caller = f"ip:{address}"
        else:
            try:
                admitted = guard.admit_now(token, address, "predict", target.model)
            except ServewellError as exc:
                reply = self.guard.refusal(exc, f"ip:{address}", record.path)
                record.status = reply.status
                return (reply.message(),)
            record.caller = admitted.name
            if admitted.decision is not None:
                limits = self.guard.admitted(admitted.name, admitted.decision)
                limit_lines = b"".join(name + b": " + value + b"\r\n" for name, value in limits)
        record.model, record.version = deployment.name, str(deployment.number)
        cache.count_hit(key)
        self.app.metrics.count_cache(record.model, "hit")  # a hit never evicts
        record.cache = "hit"
        record.status = 200
        return HIT_LINE, limit_lines, message
