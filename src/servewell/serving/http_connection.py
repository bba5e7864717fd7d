"""One keep-alive connection to an upstream (an asyncio protocol, answers parsed by
httptools), one exchange at a time, as ``serving/http_pool.HttpPool`` hands them out.

An exchange's answer arrives in an :class:`Exchange`: its status and headers (the
``head``), its body whole (``done``) or, for a :class:`Streamed` answer, as its reader
takes it (reading pauses while more than :data:`STREAM_HIGH_WATER` is unread: the
reader's own client is slow). One timer bounds the exchange: the read timeout since the
last bytes (the timer, when it fires, looks at when they came: re-arming it on every
packet cost more than the packet, and a flood of packets kept cancelling it before it
ran), never past the request's deadline. Limits: :data:`MAX_HEAD_BYTES` of status line
and headers (interim 1xx answers included), the pool's ``max_body_bytes`` of body; an
answer nobody asked for ends the connection.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Protocol, cast

import httptools

from servewell.serving.http_faults import (
    DeadlinePassed,
    Dropped,
    HttpFault,
    ReadTimeout,
    TooLarge,
)

#: Bytes of a streamed body held unread before the connection stops reading.
STREAM_HIGH_WATER = 256 * 1024
#: The most of a status line and headers taken.
MAX_HEAD_BYTES = 64 * 1024


class Owner(Protocol):
    """What a connection needs of its pool."""

    loop: asyncio.AbstractEventLoop
    max_body_bytes: int
    read_timeout_s: float

    def forget(self, connection: Connection) -> None:
        """``connection`` closed."""

    def put_back(self, connection: Connection, reusable: bool) -> None:
        """``connection``'s exchange is over."""


class Answer:
    """An answer's status and headers (lower-case names; a repeated one: the first)."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: dict[bytes, bytes], body: bytes = b"") -> None:
        self.status = status
        self.headers = headers
        self.body = body


class Exchange:
    """One request's answer as it arrives on a connection."""

    __slots__ = (
        "chunks",
        "complete",
        "done",
        "head",
        "headers",
        "keep_alive",
        "readable",
        "size",
        "status",
        "streamed",
        "unread",
        "until_close",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop, streamed: bool) -> None:
        self.streamed = streamed
        """Read as it arrives (its reader may pause the connection), not whole."""
        self.headers: dict[bytes, bytes] = {}
        self.head: asyncio.Future[None] = loop.create_future()
        """Set once the status line and headers are in."""
        self.done: asyncio.Future[None] = loop.create_future()
        """Set once the whole body is in (or the exchange failed)."""
        self.chunks: list[bytes] = []
        self.size = 0
        self.unread = 0
        """Bytes of :attr:`chunks` (a stream's reader has not taken them yet)."""
        self.status = 0
        self.until_close = False
        """The body ends when the connection closes (no length, not chunked)."""
        self.readable: asyncio.Future[None] | None = None
        """A stream's reader waiting for more body."""
        self.complete = False
        self.keep_alive = False
        """Whether the upstream keeps the connection open after this answer."""


class Connection(asyncio.Protocol):
    """One keep-alive connection to the upstream, one exchange at a time."""

    def __init__(self, pool: Owner) -> None:
        self.pool = pool
        self.loop = pool.loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.exchange: Exchange | None = None
        self.closed = False
        self.paused = False
        self._head_bytes = 0
        self._before_head = 0
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._deadline_at: float | None = None
        self._heard_at = 0.0
        """When the upstream last sent bytes (or the exchange began)."""

    # --- asyncio's side -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Called by the loop, and by the pool once connected (uvloop calls it only
        after ``create_connection`` returns, and even when that was cancelled, on the
        transport it closed, with no ``connection_lost`` after): idempotent; the pool,
        not this, counts the connection live."""
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        exchange = self.exchange
        if exchange is None:  # nothing asked: an idle connection must not talk
            self.abort()
            return
        self._heard_at = time.monotonic()  # the timer looks at it when it fires
        heading = not exchange.head.done()
        if heading:  # what llhttp holds of an unfinished header, or interim answers
            self._before_head += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self._fail(Dropped("answered with something that is not HTTP/1.1"))
            return
        if heading and self._before_head > MAX_HEAD_BYTES and not exchange.head.done():
            self._fail(Dropped("sent headers past 64 KiB"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._cancel_timer()
        exchange = self.exchange
        if exchange is not None and not exchange.complete:
            if exchange.until_close and exchange.head.done():
                self.on_message_complete()  # the close is the body's end
            else:
                self._fail(Dropped("dropped the connection"))
        self.pool.forget(self)

    # --- httptools' callbacks -----------------------------------------------------------

    def on_message_begin(self) -> None:
        exchange = self.exchange
        if exchange is None or exchange.complete:  # an answer nobody asked for
            self.exchange = Exchange(self.loop, False)  # parsed into nothing, then gone
            self.exchange.complete = True
            self.abort()

    def on_header(self, name: bytes, value: bytes) -> None:
        assert self.exchange is not None
        self._head_bytes += len(name) + len(value)
        if self._head_bytes > MAX_HEAD_BYTES:
            self._fail(Dropped("sent headers past 64 KiB"))
            return
        self.exchange.headers.setdefault(name.lower(), value)

    def on_headers_complete(self) -> None:
        exchange = self.exchange
        assert exchange is not None
        exchange.status = self.parser.get_status_code()
        if exchange.status < 200:  # 1xx: an interim answer, the real one follows
            exchange.headers = {}
            return
        headers = exchange.headers
        length = headers.get(b"content-length")
        chunked = b"chunked" in headers.get(b"transfer-encoding", b"").lower()
        exchange.until_close = length is None and not chunked
        declared = length is not None and length.strip().isdigit()
        if declared and int(length or 0) > self.pool.max_body_bytes:
            self._fail(TooLarge(f"more than {self.pool.max_body_bytes} bytes"))
            return
        if not exchange.head.done():
            exchange.head.set_result(None)

    def on_body(self, body: bytes) -> None:
        exchange = self.exchange
        assert exchange is not None
        exchange.size += len(body)
        if exchange.size > self.pool.max_body_bytes:
            self._fail(TooLarge(f"more than {self.pool.max_body_bytes} bytes"))
            return
        exchange.chunks.append(body)
        exchange.unread += len(body)
        self._wake(exchange)
        if exchange.streamed and exchange.unread > STREAM_HIGH_WATER and not self.paused:
            self._pause()

    def on_message_complete(self) -> None:
        exchange = self.exchange
        if exchange is None or exchange.status < 200:
            return
        exchange.complete = True
        exchange.keep_alive = self.parser.should_keep_alive()  # False once feed_data returns
        self._cancel_timer()
        if not exchange.head.done():
            exchange.head.set_result(None)
        if not exchange.done.done():
            exchange.done.set_result(None)
        self._wake(exchange)

    # --- the pool's side ----------------------------------------------------------------

    def send(self, request: bytes, deadline_at: float | None, streamed: bool) -> Exchange:
        """Write ``request``; its answer arrives in the exchange returned (``streamed``:
        read as it arrives, else whole)."""
        assert self.transport is not None
        exchange = self.exchange = Exchange(self.loop, streamed)
        self._head_bytes = self._before_head = 0
        self._deadline_at = deadline_at
        self._arm_timer()
        self.transport.write(request)
        return exchange

    def reusable(self) -> bool:
        exchange = self.exchange
        return (
            not self.closed
            and exchange is not None
            and exchange.complete
            and exchange.keep_alive
            and not exchange.until_close
        )

    def finish(self) -> None:
        """The exchange is over: back to the pool if it ended cleanly, else closed."""
        reusable = self.reusable()
        self.exchange = None
        self._cancel_timer()
        self._resume()
        if not reusable:
            self.abort()
        self.pool.put_back(self, reusable)

    def abort(self) -> None:
        self.closed = True
        self._cancel_timer()
        if self.transport is not None:
            self.transport.abort()

    def consumed(self) -> None:
        """A stream's reader took what was buffered: read on."""
        if self._resume():
            self._arm_timer()

    # --- inside ---------------------------------------------------------------------------

    def _fail(self, fault: HttpFault) -> None:
        exchange = self.exchange
        if exchange is not None:
            for future in (exchange.head, exchange.done):
                if not future.done():
                    future.set_exception(fault)
                    future.exception()  # retrieved: the other one is the one awaited
            self._wake(exchange)
        self.abort()

    def _wake(self, exchange: Exchange) -> None:
        readable = exchange.readable
        if readable is not None and not readable.done():
            exchange.readable = None
            readable.set_result(None)

    def _resume(self) -> bool:
        """Read again, if reading was paused (and the connection is open): whether it was."""
        if not self.paused or self.transport is None or self.closed:
            return False
        self.paused = False
        self.transport.resume_reading()
        return True

    def _pause(self) -> None:
        if self.transport is not None and not self.closed:
            self.paused = True
            self.transport.pause_reading()
            self._arm_timer(read=False)  # not reading is ours, not the upstream's delay

    def _arm_timer(self, read: bool = True) -> None:
        """One timer: the read timeout from now, or the deadline if sooner (the
        deadline alone while reading is paused). A timer already set for the deadline
        is kept. Bytes arriving do not re-arm it: when it fires, :meth:`_timed_out`
        looks at when they last came."""
        self._heard_at = now = time.monotonic()
        at = now + self.pool.read_timeout_s if read else None
        deadline_at = self._deadline_at
        fault: type[HttpFault] = ReadTimeout
        if deadline_at is not None and (at is None or deadline_at <= at):
            at, fault = deadline_at, DeadlinePassed
        if self._timer is not None and at == self._timer_at == deadline_at:
            return
        self._cancel_timer()
        if at is not None:
            self._timer = self.loop.call_at(at, self._timed_out, fault)
            self._timer_at = at

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = self._timer_at = None

    def _timed_out(self, fault: type[HttpFault]) -> None:
        """The timer fired: the exchange failed, unless bytes came since it was set (a
        read timeout counts from the last bytes; re-arming it on every packet cost more
        than the rest of the packet's handling, and a flood of packets kept cancelling it
        before it ran)."""
        self._timer = self._timer_at = None
        if self.exchange is None or self.exchange.complete:
            return
        if fault is ReadTimeout and not self.paused:
            due = self._heard_at + self.pool.read_timeout_s
            deadline_at = self._deadline_at
            if deadline_at is not None and deadline_at <= due:
                due, fault = deadline_at, DeadlinePassed
            if due > time.monotonic():
                self._timer = self.loop.call_at(due, self._timed_out, fault)
                self._timer_at = due
                return
        self._fail(fault("timed out"))


class Streamed:
    """An answer whose body is read as it arrives: :meth:`chunks`, then :meth:`close`."""

    def __init__(self, connection: Connection, exchange: Exchange) -> None:
        self.status = exchange.status
        self.headers = exchange.headers
        self._connection = connection
        self._exchange = exchange
        self._closed = False

    async def chunks(self) -> AsyncIterator[bytes]:
        exchange, connection = self._exchange, self._connection
        while True:
            if exchange.chunks:
                taken, exchange.chunks = exchange.chunks, []
                exchange.unread = 0
                connection.consumed()
                for chunk in taken:
                    yield chunk
                continue
            if exchange.done.done():
                exchange.done.result()  # raises what failed it
                return
            readable = exchange.readable = connection.loop.create_future()
            await readable

    def close(self) -> None:
        """Done with it: its connection is reused if its body was read to the end."""
        if not self._closed:
            self._closed = True
            self._connection.finish()
