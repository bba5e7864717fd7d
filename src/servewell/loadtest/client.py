"""A lean HTTP/1.1 client for load: one keep-alive connection as an asyncio protocol,
requests encoded once beforehand, answers read only as far as the load test needs.

httpx builds and parses every request through several layers of objects, which caps
a generator at a few thousand requests a second per core; here a request is one
``write`` of prepared bytes and an answer is its status, its ``X-Servewell-Version``
and its body skipped by ``Content-Length`` (or by chunks, ``loadtest/answer.py``), so
the generator is not the bottleneck (``bench/loadtest.py`` compares it with wrk).

The connection is a protocol, not asyncio streams: the bytes are parsed where they
arrive and one future a request carries the answer to its sender (streams cost a
``readuntil`` and a ``readexactly`` a request, each a wait of its own). And one timer a
connection bounds its requests, not an ``asyncio.timeout`` scope each: a request sets
its deadline; the timer, when it fires, re-arms itself for the current one if that is
still ahead, so it is set about once a timeout, not once a request. A request still
unanswered at its deadline counts as no answer (status 0) and the connection is
closed, to be opened again by the next request, as after any failure.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import cast
from urllib.parse import urlsplit

from servewell.errors import InvalidInput
from servewell.loadtest.answer import AnswerReader
from servewell.loadtest.stats import NO_ANSWER


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


Result = tuple[int, str | None]
"""An exchange's answer: its status (0: none) and its ``X-Servewell-Version``."""
OnAnswer = Callable[[Result], None]
_NONE: Result = (NO_ANSWER, None)


class Connection:
    """One keep-alive connection, opened on first use and again after a failure.

    :meth:`exchange` awaits an answer; the open loop, which sends from callbacks, uses
    :meth:`open` and :meth:`send` (``on_answer`` is called where the answer is read)."""

    def __init__(self, target: Target, timeout_s: float = 30.0) -> None:
        self.target = target
        self.timeout_s = timeout_s
        self._link: _Link | None = None

    @property
    def is_open(self) -> bool:
        return self._link is not None and not self._link.closed

    async def exchange(self, request: bytes) -> Result:
        """Send ``request``; the answer's status (0: none) and version header."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s  # the connect counts in the timeout
        if not self.is_open and not await self.open(deadline):
            return _NONE
        waiting: asyncio.Future[Result] = loop.create_future()
        self.send(request, partial(_resolve, waiting), deadline)
        return await waiting

    async def open(self, deadline: float | None = None) -> bool:
        """Connect (by ``deadline``, in the loop's time; else a timeout from now):
        whether it did."""
        loop = asyncio.get_running_loop()
        link = _Link(loop)
        context = ssl.create_default_context() if self.target.tls else None
        try:
            async with asyncio.timeout_at(deadline or loop.time() + self.timeout_s):
                transport, _ = await loop.create_connection(
                    lambda: link, self.target.host, self.target.port, ssl=context
                )
        except (OSError, TimeoutError, ValueError):
            link.abort()
            return False
        link.connection_made(transport)  # uvloop may call it only later
        self._link = link
        return True

    def send(self, request: bytes, on_answer: OnAnswer, deadline: float | None = None) -> None:
        """Write ``request`` on the open connection; ``on_answer`` gets its answer, or no
        answer by ``deadline`` (else a timeout from now)."""
        link = self._link
        assert link is not None
        link.send(request, on_answer, deadline or link.loop.time() + self.timeout_s)

    def close(self) -> None:
        if self._link is not None:
            self._link.abort()
        self._link = None


def _resolve(waiting: asyncio.Future[Result], result: Result) -> None:
    if not waiting.done():  # not if its awaiter was cancelled
        waiting.set_result(result)


class _Link(asyncio.Protocol):
    """The open connection: it writes a request and hands its answer to the request's
    callback when the answer is in, or no answer when the connection fails first."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._reader = AnswerReader()
        self._on_answer: OnAnswer | None = None
        self._deadline = 0.0
        self._timer: asyncio.TimerHandle | None = None

    def send(self, request: bytes, on_answer: OnAnswer, deadline: float) -> None:
        assert self.transport is not None
        self._on_answer = on_answer
        self._deadline = deadline
        if self._timer is None:
            self._timer = self.loop.call_at(deadline, self._check_deadline)
        self.transport.write(request)
        if self._reader.holds_bytes:  # a server ahead of its requests
            self._take_answer(b"")

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Called by the loop and once more by :meth:`Connection.open`: idempotent."""
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        if self._on_answer is None:  # kept for the next request, as a stream's buffer
            self._reader.hold(data)
            return
        self._take_answer(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._cancel_timer()
        self._answer(_NONE)

    def abort(self) -> None:
        self.closed = True
        self._cancel_timer()
        if self.transport is not None:
            self.transport.abort()

    def _take_answer(self, data: bytes) -> None:
        try:
            answer = self._reader.feed(data)
        except ValueError:  # not HTTP/1.1 as the reader knows it, or a head too long
            self._fail()
            return
        if answer is None:
            return
        if answer.closes:
            self.abort()
        self._answer((answer.status, answer.version))

    def _answer(self, result: Result) -> None:
        """Hand ``result`` to the request's callback (which may send the next one)."""
        on_answer, self._on_answer = self._on_answer, None
        if on_answer is not None:
            on_answer(result)

    def _fail(self) -> None:
        self.abort()
        self._answer(_NONE)

    def _check_deadline(self) -> None:
        """The timer fired: the request in flight failed if its deadline has passed;
        else the timer waits for that deadline (none in flight: no timer)."""
        self._timer = None
        if self._on_answer is None:
            return
        if self._deadline > self.loop.time():
            self._timer = self.loop.call_at(self._deadline, self._check_deadline)
            return
        self._fail()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
