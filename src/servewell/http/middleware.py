"""The edge every HTTP request but an inference one passes (the gateway records those
itself): request id, in-flight gauge, request metrics and the JSON access log line, in
one plain ASGI layer, through the same :class:`~servewell.serving.recorder.Recorder`.

A WebSocket connection (which ``servewell serve`` never passes on: it runs uvicorn
without WebSocket, but another server might) is closed here at once with code 1008, and
recorded like a refused request."""

from __future__ import annotations

import logging
import time

from servewell.errors import WebSocketUnsupported
from servewell.http.problems import to_reply
from servewell.http.wire import ASGIApp, Message, Receive, Scope, Send, header, send_reply
from servewell.observability import RequestRecord, bind_request, unbind_request
from servewell.observability.metrics import CLIENT_CLOSED
from servewell.serving.call import ClientDisconnected
from servewell.serving.gateway import REQUEST_ID
from servewell.serving.recorder import Recorder, request_id_from

logger = logging.getLogger(__name__)


class EdgeMiddleware:
    def __init__(self, app: ASGIApp, recorder: Recorder) -> None:
        self.app = app
        self.recorder = recorder

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self._refuse_websocket(scope, receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = request_id_from(header(scope, REQUEST_ID))
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

        recorder = self.recorder
        recorder.enter()
        try:
            await self.app(scope, receive, send_with_id)
        except ClientDisconnected:
            record.status = CLIENT_CLOSED
        except Exception as exc:
            if response_started:
                logger.error("request failed after its response began", exc_info=exc)
            else:
                await send_reply(to_reply(exc, v2=path.startswith("/v2")), send_with_id)
        finally:
            recorder.leave()
            client = scope.get("client")
            recorder.finish(record, time.perf_counter() - started, client[0] if client else None)
            unbind_request(token)

    async def _refuse_websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Close a WebSocket before accepting it, recorded as the 403 the server answers
        the handshake with then (ASGI's rule for a close before accept)."""
        started = time.perf_counter()
        refusal = WebSocketUnsupported()
        path: str = scope["path"]
        record = RequestRecord(
            request_id_from(header(scope, REQUEST_ID)),
            "GET",  # a handshake is a GET
            path,
            protocol=_protocol(path),
            status=403,
            error=refusal.code,
        )
        if (await receive())["type"] == "websocket.connect":
            await send({"type": "websocket.close", "code": 1008, "reason": refusal.message[:123]})
        client = scope.get("client")
        self.recorder.finish(record, time.perf_counter() - started, client[0] if client else None)


def _protocol(path: str) -> str:
    if path.startswith("/v2/"):
        return "v2"
    if path.startswith("/v1/"):
        return "rest"
    return "other"
