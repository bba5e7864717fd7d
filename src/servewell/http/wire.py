"""Plain ASGI plumbing for the hot paths: headers, a size-limited body, one reply."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from servewell.core.jsondepth import check_json_depth, may_exceed_depth
from servewell.errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

JSON = b"application/json"
OCTET_STREAM = b"application/octet-stream"
NUMPY_JSON = orjson.OPT_SERIALIZE_NUMPY


class ClientDisconnected(Exception):
    """The client went away before its request body arrived."""


@dataclass(slots=True)
class Reply:
    """One complete HTTP response."""

    status: int
    body: bytes
    content_type: bytes = JSON
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)

    @classmethod
    def json(cls, status: int, content: Any) -> Reply:
        return cls(status, orjson.dumps(content, option=NUMPY_JSON))

    def message(self) -> bytes:
        """Everything after the status line as HTTP/1.1 writes it: content type, extra
        headers, length, a blank line, the body (per-response headers go before it)."""
        lines = [b"content-type: " + self.content_type + b"\r\n"]
        lines.extend(name + b": " + value + b"\r\n" for name, value in self.headers)
        lines.append(b"content-length: %d\r\n\r\n" % len(self.body))
        lines.append(self.body)
        return b"".join(lines)

    async def send(self, send: Send) -> None:
        headers = [
            (b"content-type", self.content_type),
            (b"content-length", str(len(self.body)).encode()),
            *self.headers,
        ]
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": self.body})


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


async def read_body(scope: Scope, receive: Receive, limit_bytes: int) -> bytes:
    """The whole request body, refusing one over ``limit_bytes`` with 413."""
    length = header(scope, b"content-length")
    if length is not None and length.isdigit() and int(length) > limit_bytes:
        raise PayloadTooLarge(limit_bytes)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected
        chunk = message.get("body", b"")
        if not message.get("more_body", False) and not chunks:
            if len(chunk) > limit_bytes:
                raise PayloadTooLarge(limit_bytes)
            return chunk  # type: ignore[no-any-return]
        size += len(chunk)
        if size > limit_bytes:
            raise PayloadTooLarge(limit_bytes)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


#: A cached reply: this magic, then its header lines as HTTP/1.1 writes them (content
#: type, length, extras), a blank line and the body: a hit can write it out as it is.
_ENTRY = b"SWR2"
_END_OF_HEAD = b"\r\n\r\n"


def pack_reply(reply: Reply) -> bytes:
    """A successful reply as one response-cache entry."""
    return _ENTRY + reply.message()


def entry_message(entry: bytes) -> memoryview | None:
    """The header lines, blank line and body in a cache entry (what follows the status
    line and the per-response headers); None when it is not one of ours."""
    if not entry.startswith(_ENTRY):
        return None
    return memoryview(entry)[len(_ENTRY) :]


def unpack_reply(entry: bytes) -> Reply | None:
    """The 200 reply in a cache entry; None for bytes that are not one (a miss)."""
    end = entry.find(_END_OF_HEAD)
    if not entry.startswith(_ENTRY) or end < 0:
        return None
    content_type = JSON
    headers: list[tuple[bytes, bytes]] = []
    for line in entry[len(_ENTRY) : end].split(b"\r\n"):
        name, sep, value = line.partition(b": ")
        if not sep:
            return None
        if name == b"content-type":
            content_type = value
        elif name != b"content-length":
            headers.append((name, value))
    return Reply(200, entry[end + len(_END_OF_HEAD) :], content_type, headers)
