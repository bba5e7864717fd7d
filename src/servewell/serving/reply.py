"""One complete answer, whatever protocol asked, and the response-cache entry made of it.

A :class:`Reply` is a status, a body, its content type and extra headers: what the
protocol adapters (V2, REST) encode answers and errors to, and what the server writes.
A streamed reply (``stream: true`` chat completions) has an async iterator of body
chunks as well, sent as they come (``http.wire.send_reply``). A cache entry is a
successful reply as HTTP/1.1 writes it after the status line (its header lines, a blank
line, the body), so a hit can be written out as it is.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson

JSON = b"application/json"
OCTET_STREAM = b"application/octet-stream"
NUMPY_JSON = orjson.OPT_SERIALIZE_NUMPY


@dataclass(slots=True)
class Reply:
    """One complete response."""

    status: int
    body: bytes
    content_type: bytes = JSON
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    stream: AsyncIterator[bytes] | None = None
    """A streamed answer's body (server-sent events), sent as it arrives after
    :attr:`body`; never cached (the gateway computes no key for it)."""

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


def header_lines(headers: list[tuple[bytes, bytes]]) -> bytes:
    """Headers as HTTP/1.1 writes them, one ``name: value`` line each."""
    return b"".join(name + b": " + value + b"\r\n" for name, value in headers)


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
