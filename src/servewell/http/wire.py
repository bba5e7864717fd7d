"""Plain ASGI plumbing for the hot paths: headers, a size-limited body, one reply, and
the JSON checks both protocol adapters make."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any

import orjson

from servewell.core.jsondepth import check_json_depth, may_exceed_depth
from servewell.errors import (
    BodiesOverBudget,
    InvalidInput,
    PayloadTooLarge,
    RequestTimeout,
    UnsupportedMediaType,
)
from servewell.serving.call import ClientDisconnected
from servewell.serving.reply import JSON, Reply

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: The ASGI scope key under which the HTTP protocol hands the app the gateway call it
#: built for a request ``try_now`` did not answer: headers, body, cache key and request
#: id already there, nothing is read or hashed twice.
CALL = "servewell.call"
#: The ASGI scope key the HTTP protocol sets (to its RequestTimeout) when a body stopped
#: arriving, or arrived too slowly, and it answered 408: the app, released with
#: ``http.disconnect``, ends the request as that 408 rather than as a client that left.
BODY_TIMED_OUT = "servewell.body_timed_out"


async def send_reply(reply: Reply, send: Send) -> None:
    """Send ``reply`` as one ASGI response (a streamed one as its chunks arrive, then
    its stream closed, whether it ran out or the sending stopped)."""
    if reply.stream is not None:
        await _send_stream(reply, reply.stream, send)
        return
    headers = [
        (b"content-type", reply.content_type),
        (b"content-length", str(len(reply.body)).encode()),
        *reply.headers,
    ]
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    await send({"type": "http.response.body", "body": reply.body})


async def _send_stream(reply: Reply, stream: AsyncIterator[bytes], send: Send) -> None:
    headers = [(b"content-type", reply.content_type), *reply.headers]
    try:
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        if reply.body:
            await send({"type": "http.response.body", "body": reply.body, "more_body": True})
        async for chunk in stream:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    finally:
        close = getattr(stream, "aclose", None)
        if close is not None:
            await close()


def header(scope: Scope, name: bytes) -> bytes | None:
    """A request header's value (``name`` in lower case), or None."""
    for key, value in scope["headers"]:
        if key == name:
            return value  # type: ignore[no-any-return]
    return None


def check_json(content_type: bytes | None) -> None:
    """Accept JSON, or no content type at all; refuse anything else with 415."""
    if content_type is None:
        return
    media = content_type.split(b";", 1)[0].strip().lower()
    if media not in (JSON, b"") and not media.endswith(b"+json"):
        raise UnsupportedMediaType(media.decode("latin-1"), "application/json")


def load_json(raw: bytes | memoryview, max_depth: int) -> Any:
    """A request body's JSON; InvalidInput (400) when it is not JSON or nests deeper than
    ``max_depth`` (``validation.max_json_depth``)."""
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"the request body is not valid JSON: {exc}") from None
    if may_exceed_depth(bytes(raw), max_depth):
        check_json_depth(document, max_depth)
    return document


class BodyBudget:
    """The bytes of request bodies a server process holds while they arrive, at most
    ``limit`` (``server.max_receiving_body_bytes``) together."""

    def __init__(self, limit: int, retry_after_s: int = 1) -> None:
        self.limit = limit
        self.held = 0
        self.retry_after_s = retry_after_s

    def take(self, size: int) -> None:
        if self.held + size > self.limit:
            raise BodiesOverBudget(self.limit, self.retry_after_s)
        self.held += size

    def give_back(self, size: int) -> None:
        self.held -= size


async def read_body(
    scope: Scope, receive: Receive, limit_bytes: int, budget: BodyBudget | None = None
) -> bytes:
    """The whole request body, refusing one over ``limit_bytes`` with 413 (one that
    stopped arriving, as the HTTP protocol says, with 408; one that the process has no
    room for while it arrives, in ``budget``, with 503)."""
    length = header(scope, b"content-length")
    if length is not None and length.isdigit() and int(length) > limit_bytes:
        raise PayloadTooLarge(limit_bytes)
    held: list[int] = [0]
    try:
        return await _read_chunks(scope, receive, limit_bytes, budget, held)
    finally:
        if budget is not None:
            budget.give_back(held[0])


async def _read_chunks(
    scope: Scope, receive: Receive, limit_bytes: int, budget: BodyBudget | None, held: list[int]
) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            timed_out = scope.get(BODY_TIMED_OUT)
            if isinstance(timed_out, RequestTimeout):
                raise timed_out
            raise ClientDisconnected
        chunk = message.get("body", b"")
        if not message.get("more_body", False) and not chunks:
            if len(chunk) > limit_bytes:
                raise PayloadTooLarge(limit_bytes)
            return chunk  # type: ignore[no-any-return]
        size += len(chunk)
        if size > limit_bytes:
            raise PayloadTooLarge(limit_bytes)
        if budget is not None:
            budget.take(len(chunk))
            held[0] += len(chunk)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)
