"""The edge every HTTP request passes: request id, in-flight gauge, request metrics and
the JSON access log line, in one plain ASGI layer (cheap on the hot path)."""

from __future__ import annotations

import itertools
import logging
import os
import time

from servewell.http.problems import to_reply
from servewell.http.wire import ASGIApp, ClientDisconnected, Message, Receive, Scope, Send
from servewell.observability import (
    AccessLog,
    RequestRecord,
    ServingMetrics,
    bind_request,
    unbind_request,
)

logger = logging.getLogger(__name__)

REQUEST_ID = b"x-request-id"
#: Status logged when the client went away before it could be answered (nginx's).
CLIENT_CLOSED = 499


class EdgeMiddleware:
    def __init__(self, app: ASGIApp, metrics: ServingMetrics, access_log: AccessLog | None) -> None:
        self.app = app
        self.metrics = metrics
        self.access_log = access_log
        self.active = 0
        self._counts_in_flight = metrics.watch_in_flight(lambda: self.active)

    def is_alone(self) -> bool:
        """Whether at most one request is being handled now."""
        return self.active <= 1

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _request_id(scope)
        path: str = scope["path"]
        record = RequestRecord(request_id, scope["method"], path, protocol=_protocol(path))
        token = bind_request(record)
        id_header = (REQUEST_ID, request_id.encode())
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
                record.status = message["status"]
                message["headers"] = [
                    *message.get("headers", ()),
                    *record.response_headers,
                    id_header,
                ]
            await send(message)

        counts_in_flight = self._counts_in_flight
        if counts_in_flight:
            self.metrics.in_flight.inc()
        self.active += 1
        try:
            await self.app(scope, receive, send_with_id)
        except ClientDisconnected:
            record.status = CLIENT_CLOSED
        except Exception as exc:
            if response_started:
                logger.error("request failed after its response began", exc_info=exc)
            else:
                await to_reply(exc, v2=path.startswith("/v2")).send(send_with_id)
        finally:
            self.active -= 1
            if counts_in_flight:
                self.metrics.in_flight.dec()
            client = scope.get("client")
            self.finish(record, time.perf_counter() - started, client[0] if client else None)
            unbind_request(token)

    def finish(self, record: RequestRecord, elapsed_s: float, client: str | None) -> None:
        """An answered request in the metrics and the access log."""
        self.metrics.observe_request(
            record.model, record.version, record.protocol, record.status, elapsed_s
        )
        if record.error:
            self.metrics.count_error(record.error)
        if self.access_log is not None:
            self.access_log.write(record, elapsed_s, client)


def _request_id(scope: Scope) -> str:
    for key, value in scope["headers"]:
        if key == REQUEST_ID:
            return request_id_from(value)
    return request_id_from(None)


#: Fresh ids: a random prefix per process, then a counter (unique, and cheaper than
#: fresh randomness per request; request ids are names, not secrets).
_ID_PREFIX = os.urandom(6).hex()
_id_counter = itertools.count(1)


def request_id_from(value: bytes | None) -> str:
    """The client's ``X-Request-Id`` when it is a sane one, else a fresh id."""
    if value is not None:
        text = value.decode("latin-1")
        if 0 < len(text) <= 128 and text.isascii() and text.isprintable():
            return text
    return f"{_ID_PREFIX}{next(_id_counter):012x}"


def _protocol(path: str) -> str:
    if path.startswith("/v2/"):
        return "v2"
    if path.startswith("/v1/"):
        return "rest"
    return "other"
