"""Plain ASGI plumbing for the hot paths: headers, a size-limited body, one reply."""

from __future__ import annotations

import struct
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from servewell.errors import PayloadTooLarge, UnsupportedMediaType

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

    def head_lines(self) -> bytes:
        """The content type and extra headers as HTTP/1.1 header lines (no length)."""
        lines = [b"content-type: " + self.content_type + b"\r\n"]
        lines.extend(name + b": " + value + b"\r\n" for name, value in self.headers)
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


#: A cached reply: magic, the length of its header lines, the lines, the body.
_ENTRY = b"SWR1"
_ENTRY_HEAD = struct.Struct("<4sI")


def pack_reply(reply: Reply) -> bytes:
    """A successful reply as one response-cache entry. Its header lines are kept as HTTP
    writes them, so a hit can be written to the socket without building them again."""
    head = reply.head_lines()
    return _ENTRY_HEAD.pack(_ENTRY, len(head)) + head + reply.body


def split_entry(entry: bytes) -> tuple[bytes, bytes] | None:
    """A cache entry's (header lines, body); None when it is not one of ours."""
    if len(entry) < _ENTRY_HEAD.size or not entry.startswith(_ENTRY):
        return None
    _, size = _ENTRY_HEAD.unpack_from(entry)
    end = _ENTRY_HEAD.size + size
    if end > len(entry):
        return None
    return entry[_ENTRY_HEAD.size : end], entry[end:]


def unpack_reply(entry: bytes) -> Reply | None:
    """The 200 reply in a cache entry; None for bytes that are not one (a miss)."""
    parts = split_entry(entry)
    if parts is None:
        return None
    head, body = parts
    content_type = JSON
    headers: list[tuple[bytes, bytes]] = []
    for line in head.split(b"\r\n")[:-1]:
        name, sep, value = line.partition(b": ")
        if not sep:
            return None
        if name == b"content-type":
            content_type = value
        else:
            headers.append((name, value))
    return Reply(200, body, content_type, headers)
