"""Errors to HTTP answers: the one place a ServewellError becomes a status and a body.

An exposed error (4xx, and 503s the caller can act on) says what was wrong; anything
else answers only that the request failed (or, when the model itself failed, which
model) and its request id, and is logged with its stack trace. V2 routes keep the
protocol's ``{"error": "..."}``; the others add the stable ``code`` and ``detail``.
"""

from __future__ import annotations

import logging

from servewell.errors import (
    BodiesOverBudget,
    MethodNotAllowed,
    ModelFailed,
    ModelUnavailable,
    Overloaded,
    RateLimited,
    ServewellError,
    ShuttingDown,
    TooManyConnections,
    Unauthorized,
    Unavailable,
    WebSocketUnsupported,
)
from servewell.observability import current_request
from servewell.serving.reply import Reply

logger = logging.getLogger(__name__)

#: Refusals whose answer says when to come back (``Retry-After``).
_RETRY_LATER = (
    Overloaded,
    ModelUnavailable,
    RateLimited,
    Unavailable,
    TooManyConnections,
    ShuttingDown,
    BodiesOverBudget,
)


def retry_headers(exc: ServewellError) -> list[tuple[bytes, bytes]]:
    """When to come back (``Retry-After``) and a rate limit's own headers, for a refusal
    that says so (a 429 or 503); none for any other error. Every answer of such an
    error carries them: the API's, and the dashboard's sign-in page."""
    headers: list[tuple[bytes, bytes]] = []
    if isinstance(exc, _RETRY_LATER):
        headers.append((b"retry-after", str(exc.retry_after_s).encode()))
    if isinstance(exc, RateLimited):
        headers.extend(
            (name.lower().encode(), value.encode()) for name, value in exc.headers.items()
        )
    return headers


def to_reply(exc: Exception, *, v2: bool = False) -> Reply:
    """The answer to a failed request; unexpected errors are logged here."""
    record = current_request()
    if isinstance(exc, ServewellError) and exc.expose:
        if record is not None:
            record.error = exc.code
        body = {"error": exc.message} if v2 else exc.to_dict()
        reply = Reply.json(int(exc.status), body)
        reply.headers.extend(retry_headers(exc))
        if isinstance(exc, Unauthorized):
            reply.headers.append((b"www-authenticate", b'Bearer realm="servewell"'))
        if isinstance(exc, MethodNotAllowed):
            reply.headers.append((b"allow", ", ".join(exc.allowed).encode()))
        if isinstance(exc, WebSocketUnsupported):
            # The client meant to switch protocols: nothing more on this connection.
            reply.headers.append((b"connection", b"close"))
        return reply
    code = exc.code if isinstance(exc, ServewellError) else "internal"
    status = int(exc.status) if isinstance(exc, ServewellError) else 500
    request_id = record.request_id if record is not None else ""
    if record is not None:
        record.error = code
    logger.error("request failed: %s", exc, exc_info=exc)
    failed = "the request"
    if isinstance(exc, ModelFailed) and record is not None and record.model:
        failed = f"model '{record.model}' version {record.version}"  # the model's own fault
    body = {"error": f"{failed} failed; request id {request_id}"}
    if not v2:
        body["code"] = code
    return Reply.json(status, body)
