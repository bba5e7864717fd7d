"""Reading a server's answers out of the bytes one connection receives, only as far as
the load test needs: the status, the ``X-Servewell-Version`` header, whether the server
closes after it, and where its body ends (``Content-Length``, or chunks; none else).

Bytes come in as the transport delivers them; :meth:`AnswerReader.feed` keeps what is
not yet a whole answer and says when one is. The head is parsed once, when its blank
line is in; a chunked body is walked chunk by chunk as far as the bytes go.
"""

from __future__ import annotations

from typing import NamedTuple

_VERSION = b"\r\nx-servewell-version:"
_LENGTH = b"\r\ncontent-length:"
_CHUNKED = b"\r\ntransfer-encoding: chunked"
_CLOSE = b"\r\nconnection: close"
#: The most of a status line and headers taken (an answer's head past it is refused).
MAX_HEAD_BYTES = 64 * 1024
_NO_HEAD = -1


class Answer(NamedTuple):
    status: int
    version: str | None
    closes: bool
    """The server said ``Connection: close``."""


class AnswerReader:
    """One answer after another from a connection's bytes; a malformed one (or a head
    past :data:`MAX_HEAD_BYTES`) raises ValueError."""

    __slots__ = ("_answer", "_body_at", "_body_end", "_buffer", "_chunked")

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._reset()

    def _reset(self) -> None:
        self._body_at = _NO_HEAD
        """Where the body starts (past the head's blank line), once the head is in."""
        self._body_end = 0
        """A body by length: where it ends."""
        self._chunked = False
        self._answer: Answer | None = None

    def feed(self, data: bytes) -> Answer | None:
        """Take ``data``; the answer it completes, if it does (bytes past that answer
        are kept for the next)."""
        self._buffer += data
        return self.next()

    @property
    def holds_bytes(self) -> bool:
        return bool(self._buffer)

    def hold(self, data: bytes) -> None:
        """Keep ``data`` unread (it came while no request was waiting)."""
        self._buffer += data

    def next(self) -> Answer | None:
        """The answer the bytes held complete, if they do."""
        if self._body_at == _NO_HEAD and not self._read_head():
            return None
        end = self._chunks_end() if self._chunked else self._body_end
        if end < 0 or end > len(self._buffer):
            return None
        del self._buffer[:end]
        answer = self._answer
        self._reset()
        return answer

    def _read_head(self) -> bool:
        buffer = self._buffer
        blank = buffer.find(b"\r\n\r\n")
        if blank > MAX_HEAD_BYTES or (blank < 0 and len(buffer) > MAX_HEAD_BYTES + 3):
            raise ValueError("an answer's head past 64 KiB")
        if blank < 0:
            return False
        head = bytes(buffer[:blank])
        lower = head.lower() + b"\r\n"  # every header then ends in one
        version = _header(lower, _VERSION)
        self._answer = Answer(
            int(head[9:12]), None if version is None else version.decode("latin-1"), _CLOSE in lower
        )
        self._body_at = blank + 4
        self._chunked = _CHUNKED in lower
        length = None if self._chunked else _header(lower, _LENGTH)
        self._body_end = self._body_at + (int(length) if length else 0)
        return True

    def _chunks_end(self) -> int:
        """Where the chunked body ends, or -1 while its last chunk is not in. Walks on
        from the last whole chunk seen (kept in ``_body_at``)."""
        buffer = self._buffer
        while True:
            line_end = buffer.find(b"\r\n", self._body_at)
            if line_end < 0:
                if len(buffer) - self._body_at > MAX_HEAD_BYTES:
                    raise ValueError("a chunk's size line past 64 KiB")
                return -1
            size = int(bytes(buffer[self._body_at : line_end]).split(b";")[0], 16)
            chunk_end = line_end + 2 + size + 2
            if chunk_end > len(buffer):
                return -1
            self._body_at = chunk_end
            if size == 0:
                return chunk_end


def _header(lower_head: bytes, name: bytes) -> bytes | None:
    """A header's value in a lower-cased head ending in CRLF (the first one), or None."""
    start = lower_head.find(name)
    if start < 0:
        return None
    start += len(name)
    return lower_head[start : lower_head.index(b"\r\n", start)].strip()
