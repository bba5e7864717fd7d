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
from servewell.http.wire import split_entry
from servewell.observability import RequestRecord, bind_request, unbind_request

if TYPE_CHECKING:
    from servewell.http.app import ServewellApp

CONTENT_TYPE = b"content-type"
#: Headers that change how a request is handled (a cache bypass, the client's address
#: as a proxy tells it): such requests take the ASGI path.
ASGI_ONLY = frozenset(
    (b"cache-control", b"pragma", b"x-forwarded-for", b"x-forwarded-proto", b"forwarded")
)
HIT_LINE = b"x-cache: hit\r\n"
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
        protection, predictor = self.app.protection, self.app.predictor
        if protection is None or predictor is None or protection.cache is None:
            return None
        layer = protection.cache
        cache = layer.cache
        if not isinstance(cache, MemoryResponseCache) or not protection.guard.decides_now:
            return None
        target = match_infer(path)
        if target is None or path in self.guard.open_paths:
            return None
        content_type = header_length = authorization = api_key = request_id = None
        for name, value in headers:  # the first of each, as the ASGI path reads them
            if name == CONTENT_TYPE:
                content_type = content_type or value
            elif name == AUTHORIZATION:
                authorization = authorization or value
            elif name == API_KEY:
                api_key = api_key or value
            elif name == HEADER_LENGTH:
                header_length = header_length or value
            elif name == REQUEST_ID:
                request_id = request_id or value
            elif name in ASGI_ONLY:
                return None
        try:
            deployment = predictor.pool.get(target.model, version_number(target))
        except ServewellError:
            return None
        protocol = target.protocol.encode()
        key = layer.key_for(
            deployment.version, protocol, content_type or b"", header_length or b"", body
        )
        entry = None if key is None else cache.peek(key)
        parts = None if entry is None else split_entry(entry)
        if key is None or parts is None:
            return None
        record = RequestRecord(
            request_id_from(request_id),
            "POST",
            path,
            protocol=target.protocol,
            model=deployment.name,
            version=str(deployment.number),
        )
        token = bind_request(record)
        try:
            head, body = self._hit_or_refusal(
                target, record, cache, key, parts, key_from(authorization, api_key), client
            )
        finally:
            unbind_request(token)
        response = b"".join(
            (
                STATUS_LINES[record.status],
                *(name + b": " + value + b"\r\n" for name, value in default_headers),
                head,
                b"content-length: %d\r\nx-request-id: %s\r\n\r\n"
                % (len(body), record.request_id.encode()),
                body,
            )
        )
        self.edge.finish(record, time.perf_counter() - started, client)
        self.answered += 1
        return response

    def _hit_or_refusal(
        self,
        target: InferTarget,
        record: RequestRecord,
        cache: MemoryResponseCache,
        key: str,
        parts: tuple[bytes, bytes],
        token: str | None,
        client: str | None,
    ) -> tuple[bytes, bytes]:
        """(header lines, body) of the answer: the cached one, or the guard's refusal."""
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
                return reply.head_lines(), reply.body
            record.caller = admitted.name
            if admitted.decision is not None:
                limits = self.guard.admitted(admitted.name, admitted.decision)
                limit_lines = b"".join(name + b": " + value + b"\r\n" for name, value in limits)
        cache.count_hit(key)
        self.app.count_cache(record.model, "hit")
        record.status = 200
        head, body = parts
        return head + HIT_LINE + limit_lines, body
