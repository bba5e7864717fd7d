"""Requests that pass the edge and the guard but that servewell does not serve, refused
before FastAPI sees them:

* a WebSocket handshake (``Upgrade: websocket``): 400. servewell speaks plain HTTP;
  ``servewell serve`` runs uvicorn without WebSocket, so a handshake arrives here as an
  HTTP request, authenticated and logged like any other;
* an inference path (``/v1/chat/completions`` included) with a method other than
  ``POST``: 405 with ``Allow: POST``. Only a
  ``POST`` goes to the gateway; FastAPI would read ``GET /v1/models/fraud:predict`` as the
  status of a model named ``fraud:predict``.

Both are raised, for the edge to answer and record like any other error.
"""

from __future__ import annotations

from servewell.errors import MethodNotAllowed, ServewellError, WebSocketUnsupported
from servewell.http.chat import CHAT_PATH
from servewell.http.targets import match_infer
from servewell.http.wire import ASGIApp, Receive, Scope, Send, header

UPGRADE = b"upgrade"


class RefusalMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refusal = refusal_of(scope)
            if refusal is not None:
                raise refusal
        await self.app(scope, receive, send)


def refusal_of(scope: Scope) -> ServewellError | None:
    """Why an HTTP request is not served, or None when it may go on to its route."""
    if is_websocket_handshake(scope):
        return WebSocketUnsupported()
    method: str = scope["method"]
    path: str = scope["path"]
    if method != "POST" and (path == CHAT_PATH or match_infer(path) is not None):
        return MethodNotAllowed(method, path, ("POST",))
    return None


def is_websocket_handshake(scope: Scope) -> bool:
    upgrade = header(scope, UPGRADE)
    return upgrade is not None and b"websocket" in upgrade.lower()
