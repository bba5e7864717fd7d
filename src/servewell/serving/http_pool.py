"""A lean HTTP/1.1 client for one upstream: keep-alive connections on asyncio protocols,
responses parsed by httptools (llhttp, what uvicorn parses requests with).

A remote model's every request is one call to its upstream, so that call's cost is the
gateway's: aiohttp spent ~100 µs of CPU a call here (its request, response and header
objects, cookie and proxy handling, its timers), this client ~15 µs, the same
loopback and event loop (bench/README.md, issue #18). It does only what the upstream
client needs: ``POST`` a body that is already bytes; read the answer's status, its
headers and its body, whole (:meth:`HttpPool.post`) or as it arrives
(:meth:`HttpPool.stream`); ``Content-Length``, chunked and until-close bodies; TLS
(``https``; certificates checked as ``ssl.create_default_context`` does, so
``SSL_CERT_FILE`` names another authority); at most ``max_connections`` connections,
callers beyond that waiting their turn.

One timer bounds each exchange: the read timeout from the last bytes received, never
past the request's deadline (``deadline_at``, ``time.monotonic()``, the loop's clock).
What goes wrong is raised as an :class:`HttpFault` (the upstream client words it):
:class:`Unreachable`, :class:`ConnectTimeout`, :class:`ReadTimeout`,
:class:`DeadlinePassed`, :class:`Dropped` (closed or malformed midway),
:class:`TooLarge` (a body past ``max_body_bytes``). A connection whose exchange did not
end cleanly (an error, a cancelled caller, a stream left unread) is closed, never reused.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator, Mapping
from typing import cast
from urllib.parse import urlsplit

import httptools

#: Bytes of a streamed body held unread before the connection stops reading.
STREAM_HIGH_WATER = 256 * 1024
#: The most of a status line and headers taken.
MAX_HEAD_BYTES = 64 * 1024


class HttpFault(Exception):
    """An exchange with the upstream failed (the message never quotes what it sent)."""


class Unreachable(HttpFault):
    """No connection: refused, unreachable, no such host, TLS refused."""


class ConnectTimeout(HttpFault):
    """No connection within the connect timeout (or no free one in time)."""


class ReadTimeout(HttpFault):
    """The upstream sent nothing for the read timeout."""


class DeadlinePassed(HttpFault):
    """The request's deadline came before the answer."""


class Dropped(HttpFault):
    """The connection closed, or the answer was not HTTP, before the answer ended."""


class TooLarge(HttpFault):
    """The answer's body went past ``max_body_bytes``."""


class Answer:
    """An answer's status and headers (lower-case names; a repeated one: the first)."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: dict[bytes, bytes], body: bytes = b"") -> None:
        self.status = status
        self.headers = headers
        self.body = body


class _Exchange:
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


class _Connection(asyncio.Protocol):
    """One keep-alive connection to the upstream, one exchange at a time."""

    def __init__(self, pool: HttpPool) -> None:
        self.pool = pool
        self.loop = pool.loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.exchange: _Exchange | None = None
        self.closed = False
        self.paused = False
        self._head_bytes = 0
        self._before_head = 0
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._deadline_at: float | None = None

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
        self._arm_timer()
        heading = not exchange.head.done()
        if heading:  # what llhttp holds of an unfinished header, or interim answers
            self._before_head += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self._fail(Dropped("the upstream's answer is not HTTP/1.1"))
            return
        if heading and self._before_head > MAX_HEAD_BYTES and not exchange.head.done():
            self._fail(Dropped("the upstream's headers went past 64 KiB"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._cancel_timer()
        exchange = self.exchange
        if exchange is not None and not exchange.complete:
            if exchange.until_close and exchange.head.done():
                self.on_message_complete()  # the close is the body's end
            else:
                self._fail(Dropped("the upstream closed the connection"))
        self.pool.forget(self)

    # --- httptools' callbacks -----------------------------------------------------------

    def on_message_begin(self) -> None:
        exchange = self.exchange
        if exchange is None or exchange.complete:  # an answer nobody asked for
            self.exchange = _Exchange(self.loop, False)  # parsed into nothing, then gone
            self.exchange.complete = True
            self.abort()

    def on_header(self, name: bytes, value: bytes) -> None:
        assert self.exchange is not None
        self._head_bytes += len(name) + len(value)
        if self._head_bytes > MAX_HEAD_BYTES:
            self._fail(Dropped("the upstream's headers went past 64 KiB"))
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

    def send(self, request: bytes, deadline_at: float | None, streamed: bool) -> _Exchange:
        """Write ``request``; its answer arrives in the exchange returned (``streamed``:
        read as it arrives, else whole)."""
        assert self.transport is not None
        exchange = self.exchange = _Exchange(self.loop, streamed)
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
        if self.paused and self.transport is not None and not self.closed:
            self.paused = False
            self.transport.resume_reading()
        if not reusable:
            self.abort()
        self.pool.put_back(self, reusable)

    def abort(self) -> None:
        self.closed = True
        self._cancel_timer()
        if self.transport is not None:
            self.transport.abort()

    def consumed(self, exchange: _Exchange) -> None:
        """A stream's reader took what was buffered: read on."""
        if self.paused and self.transport is not None and not self.closed:
            self.paused = False
            self.transport.resume_reading()
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

    def _wake(self, exchange: _Exchange) -> None:
        readable = exchange.readable
        if readable is not None and not readable.done():
            exchange.readable = None
            readable.set_result(None)

    def _pause(self) -> None:
        if self.transport is not None and not self.closed:
            self.paused = True
            self.transport.pause_reading()
            self._arm_timer(read=False)  # not reading is ours, not the upstream's delay

    def _arm_timer(self, read: bool = True) -> None:
        """One timer: the read timeout from now, or the deadline if sooner (the
        deadline alone while reading is paused). A timer already set for the deadline
        is kept: bytes arriving at every turn of the loop would otherwise cancel it
        each time before it runs."""
        at = time.monotonic() + self.pool.read_timeout_s if read else None
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
        self._timer = self._timer_at = None
        if self.exchange is not None and not self.exchange.complete:
            self._fail(fault("timed out"))


class Streamed:
    """An answer whose body is read as it arrives: :meth:`chunks`, then :meth:`close`."""

    def __init__(self, connection: _Connection, exchange: _Exchange) -> None:
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
                connection.consumed(exchange)
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


class HttpPool:
    """Keep-alive connections to the upstream at ``url`` (``http`` or ``https``), each
    request carrying ``headers``; at most ``max_connections`` open at once."""

    def __init__(
        self,
        url: str,
        headers: Mapping[str, str],
        *,
        max_connections: int,
        max_body_bytes: int,
        connect_timeout_s: float,
        read_timeout_s: float,
    ) -> None:
        parts = urlsplit(url)
        self.tls = parts.scheme == "https"
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if self.tls else 80)
        self.prefix = parts.path.rstrip("/")
        self.max_connections = max_connections
        self.max_body_bytes = max_body_bytes
        self.connect_timeout_s = connect_timeout_s
        self.read_timeout_s = read_timeout_s
        default_port = 443 if self.tls else 80
        host = f"[{self.host}]" if ":" in self.host else self.host  # IPv6
        host = host if self.port == default_port else f"{host}:{self.port}"
        lines = [f"host: {host}", *(f"{name}: {value}" for name, value in headers.items())]
        self._head_lines = ("\r\n".join(lines) + "\r\n").encode("latin-1")
        self._ssl = ssl.create_default_context() if self.tls else None
        self.live: set[_Connection] = set()
        """Every open connection (added once connected; it leaves when it closes)."""
        self._idle: list[_Connection] = []
        self._connecting = 0
        self._waiting: deque[asyncio.Future[_Connection | None]] = deque()
        self._heads: dict[str, bytes] = {}
        self.loop = asyncio.get_running_loop()

    async def post(self, path: str, body: bytes, deadline_at: float | None) -> Answer:
        """The answer to ``body`` POSTed to ``path``, its body read whole."""
        connection = await self._connection(deadline_at)
        try:
            exchange = connection.send(self._request(path, body), deadline_at, False)
            await exchange.done
        except BaseException:
            connection.abort()
            connection.finish()
            raise
        answer = Answer(exchange.status, exchange.headers, b"".join(exchange.chunks))
        connection.finish()
        return answer

    async def stream(self, path: str, body: bytes, deadline_at: float | None) -> Streamed:
        """The answer to ``body`` POSTed to ``path``, once its headers are in; read its
        body with :meth:`Streamed.chunks`, then :meth:`Streamed.close` it."""
        connection = await self._connection(deadline_at)
        try:
            exchange = connection.send(self._request(path, body), deadline_at, True)
            await exchange.head
        except BaseException:
            connection.abort()
            connection.finish()
            raise
        return Streamed(connection, exchange)

    async def close(self) -> None:
        """Close every connection (an exchange under way fails as Dropped)."""
        for connection in list(self.live):
            connection.abort()
        self._idle.clear()
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_exception(Unreachable("the client is closed"))
                waiter.exception()

    # --- connections ----------------------------------------------------------------------

    def forget(self, connection: _Connection) -> None:
        """A connection closed (by either side): it leaves the pool; its room may go
        to a caller waiting."""
        self.live.discard(connection)
        if connection in self._idle:
            self._idle.remove(connection)
        self._wake_one()

    def put_back(self, connection: _Connection, reusable: bool) -> None:
        """An exchange ended: a clean connection goes to the first caller waiting, else
        waits idle (one that is not clean was closed: :meth:`forget` follows)."""
        if not reusable:
            return
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(connection)
                return
        self._idle.append(connection)

    def _wake_one(self) -> None:
        """Tell the first caller waiting that there may be room to connect."""
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def _connection(self, deadline_at: float | None) -> _Connection:
        """An idle connection, a new one, or (at ``max_connections``) the first one
        given back or room to open one, within the deadline."""
        idle = self._idle
        while True:
            while idle:
                connection = idle.pop()
                if not connection.closed:
                    return connection
            if len(self.live) + self._connecting < self.max_connections:
                break
            found = await self._wait_turn(deadline_at)
            if found is not None and not found.closed:
                return found
        self._connecting += 1
        try:
            return await self._connect(deadline_at)
        except BaseException:
            self._wake_one()  # the room this caller took is free again
            raise
        finally:
            self._connecting -= 1

    async def _wait_turn(self, deadline_at: float | None) -> _Connection | None:
        """A connection given back, or None (there may be room now)."""
        waiter: asyncio.Future[_Connection | None] = self.loop.create_future()
        self._waiting.append(waiter)
        at, fault = self._bound(self.connect_timeout_s + self.read_timeout_s, deadline_at)
        try:
            async with asyncio.timeout_at(at):
                return await waiter
        except BaseException as exc:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self._hand_on(waiter.result())  # given in the same instant: not ours now
            else:
                waiter.cancel()
            if isinstance(exc, TimeoutError):
                raise fault("no connection free in time") from None
            raise

    def _hand_on(self, found: _Connection | None) -> None:
        if found is None:
            self._wake_one()
        else:
            self.put_back(found, not found.closed)

    async def _connect(self, deadline_at: float | None) -> _Connection:
        at, fault = self._bound(self.connect_timeout_s, deadline_at)
        try:
            async with asyncio.timeout_at(at):
                transport, protocol = await self.loop.create_connection(
                    lambda: _Connection(self),
                    self.host,
                    self.port,
                    ssl=self._ssl,
                    server_hostname=self.host if self.tls else None,
                )
        except TimeoutError:
            raise fault("no connection in time") from None
        except ssl.SSLError as exc:
            raise Unreachable(f"TLS with the upstream failed ({exc.reason})") from None
        except OSError as exc:
            raise Unreachable(type(exc).__name__) from None
        protocol.connection_made(transport)  # uvloop calls it only later
        if protocol.closed:  # closed before it could be used (forgotten already)
            raise Dropped("the upstream closed the connection")
        self.live.add(protocol)
        return protocol

    def _bound(self, timeout_s: float, deadline_at: float | None) -> tuple[float, type[HttpFault]]:
        at = time.monotonic() + timeout_s
        if deadline_at is not None and deadline_at <= at:
            return deadline_at, DeadlinePassed
        return at, ConnectTimeout

    def _request(self, path: str, body: bytes) -> bytes:
        head = self._heads.get(path)
        if head is None:
            head = self._heads[path] = (
                f"POST {self.prefix}{path} HTTP/1.1\r\n".encode("latin-1") + self._head_lines
            )
        return b"%bcontent-length: %d\r\n\r\n%b" % (head, len(body), body)
