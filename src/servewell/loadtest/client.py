"""A lean HTTP/1.1 client for load: one keep-alive connection on asyncio streams,
requests encoded once beforehand, answers read only as far as the load test needs.

httpx builds and parses every request through several layers of objects, which caps
a generator at a few thousand requests a second per core; here a request is one
``write`` of prepared bytes and an answer is its status, its ``X-Servewell-Version``
and its body skipped by ``Content-Length`` (or by chunks), so the generator is not the
bottleneck (``bench/loadtest.py`` compares it with wrk).
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

from servewell.errors import InvalidInput
from servewell.loadtest.stats import NO_ANSWER

_VERSION = b"\r\nx-servewell-version:"
_LENGTH = b"\r\ncontent-length:"
_CHUNKED = b"\r\ntransfer-encoding: chunked"
_CLOSE = b"\r\nconnection: close"
_MAX_HEAD_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class Target:
    """Where the server is: scheme, host, port and a path prefix."""

    host: str
    port: int
    tls: bool = False
    prefix: str = ""

    @classmethod
    def parse(cls, url: str) -> Target:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidInput(f"'{url}' is not a server URL; give e.g. http://127.0.0.1:8000")
        tls = parts.scheme == "https"
        try:
            port = parts.port or (443 if tls else 80)
        except ValueError:
            raise InvalidInput(f"'{url}' has no valid port") from None
        return cls(parts.hostname, port, tls, parts.path.rstrip("/"))

    @property
    def url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{self.host}:{self.port}{self.prefix}"


def encode_request(
    target: Target, method: str, path: str, body: bytes, headers: dict[str, str]
) -> bytes:
    """One whole HTTP/1.1 request (keep-alive), ready to write."""
    lines = [
        f"{method} {target.prefix}{path} HTTP/1.1",
        f"Host: {target.host}:{target.port}",
        f"Content-Length: {len(body)}",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class Connection:
    """One keep-alive connection, opened on first use and again after a failure."""

    def __init__(self, target: Target, timeout_s: float = 30.0) -> None:
        self.target = target
        self.timeout_s = timeout_s
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def exchange(self, request: bytes) -> tuple[int, str | None]:
        """Send ``request``; the answer's status (0: none) and version header."""
        try:
            async with asyncio.timeout(self.timeout_s):
                return await self._exchange(request)
        except (OSError, EOFError, TimeoutError, asyncio.IncompleteReadError, ValueError):
            self.close()
            return NO_ANSWER, None
        except asyncio.LimitOverrunError:
            self.close()
            return NO_ANSWER, None

    async def _exchange(self, request: bytes) -> tuple[int, str | None]:
        if self._writer is None:
            await self._open()
        reader, writer = self._reader, self._writer
        assert reader is not None
        assert writer is not None
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        lower = head.lower()
        if _CHUNKED in lower:
            await _skip_chunks(reader)
        else:
            length = _header(lower, _LENGTH)
            if length:
                await reader.readexactly(int(length))
        version = _header(lower, _VERSION)
        if _CLOSE in lower:
            self.close()
        return status, None if version is None else version.decode("latin-1")

    async def _open(self) -> None:
        context = ssl.create_default_context() if self.target.tls else None
        self._reader, self._writer = await asyncio.open_connection(
            self.target.host, self.target.port, ssl=context, limit=_MAX_HEAD_BYTES
        )

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None


def _header(lower_head: bytes, name: bytes) -> bytes | None:
    """A header's value in a lower-cased head (the first one), or None."""
    start = lower_head.find(name)
    if start < 0:
        return None
    start += len(name)
    return lower_head[start : lower_head.index(b"\r\n", start)].strip()


async def _skip_chunks(reader: asyncio.StreamReader) -> None:
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        await reader.readexactly(size + 2)
        if size == 0:
            return
