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

Each connection is a :class:`~servewell.serving.http_connection.Connection` (one
exchange at a time, its timer and limits there); what goes wrong is raised as an
:class:`~servewell.serving.http_faults.HttpFault`. A connection whose exchange did not
end cleanly (an error, a cancelled caller, a stream left unread) is closed, never reused;
one counts as live once ``create_connection`` has returned it (uvloop tells a protocol
it is made even when the connect was cancelled, and never that it was lost).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from collections.abc import Mapping
from urllib.parse import urlsplit

from servewell.serving.http_connection import Answer, Connection, Exchange, Streamed
from servewell.serving.http_faults import (
    ConnectTimeout,
    DeadlinePassed,
    Dropped,
    HttpFault,
    Unreachable,
)


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
        default_port = 443 if self.tls else 80
        self.port = parts.port or default_port
        self.prefix = parts.path.rstrip("/")
        self.max_connections = max_connections
        self.max_body_bytes = max_body_bytes
        self.connect_timeout_s = connect_timeout_s
        self.read_timeout_s = read_timeout_s
        host = f"[{self.host}]" if ":" in self.host else self.host  # IPv6
        host = host if self.port == default_port else f"{host}:{self.port}"
        lines = [f"host: {host}", *(f"{name}: {value}" for name, value in headers.items())]
        self._head_lines = ("\r\n".join(lines) + "\r\n").encode("latin-1")
        self._ssl = ssl.create_default_context() if self.tls else None
        self.live: set[Connection] = set()
        """Every open connection (added once connected; it leaves when it closes)."""
        self._idle: list[Connection] = []
        self._connecting = 0
        self._waiting: deque[asyncio.Future[Connection | None]] = deque()
        self._heads: dict[str, bytes] = {}
        self.loop = asyncio.get_running_loop()

    async def post(self, path: str, body: bytes, deadline_at: float | None) -> Answer:
        """The answer to ``body`` POSTed to ``path``, its body read whole."""
        connection, exchange = await self._sent(path, body, deadline_at, streamed=False)
        answer = Answer(exchange.status, exchange.headers, b"".join(exchange.chunks))
        connection.finish()
        return answer

    async def stream(self, path: str, body: bytes, deadline_at: float | None) -> Streamed:
        """The answer to ``body`` POSTed to ``path``, once its headers are in; read its
        body with :meth:`Streamed.chunks`, then :meth:`Streamed.close` it."""
        connection, exchange = await self._sent(path, body, deadline_at, streamed=True)
        return Streamed(connection, exchange)

    async def _sent(
        self, path: str, body: bytes, deadline_at: float | None, *, streamed: bool
    ) -> tuple[Connection, Exchange]:
        """``body`` POSTed on a connection, once its answer's head (``streamed``) or its
        whole answer is in; a failure or a cancelled caller closes the connection."""
        connection = await self._connection(deadline_at)
        try:
            exchange = connection.send(self._request(path, body), deadline_at, streamed)
            await (exchange.head if streamed else exchange.done)
        except BaseException:
            connection.abort()
            connection.finish()
            raise
        return connection, exchange

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

    def forget(self, connection: Connection) -> None:
        """A connection closed (by either side): it leaves the pool; its room may go
        to a caller waiting."""
        self.live.discard(connection)
        if connection in self._idle:
            self._idle.remove(connection)
        self._wake_one()

    def put_back(self, connection: Connection, reusable: bool) -> None:
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

    async def _connection(self, deadline_at: float | None) -> Connection:
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

    async def _wait_turn(self, deadline_at: float | None) -> Connection | None:
        """A connection given back, or None (there may be room now)."""
        waiter: asyncio.Future[Connection | None] = self.loop.create_future()
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

    def _hand_on(self, found: Connection | None) -> None:
        if found is None:
            self._wake_one()
        else:
            self.put_back(found, not found.closed)

    async def _connect(self, deadline_at: float | None) -> Connection:
        at, fault = self._bound(self.connect_timeout_s, deadline_at)
        try:
            async with asyncio.timeout_at(at):
                transport, protocol = await self.loop.create_connection(
                    lambda: Connection(self),
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
            raise Dropped("dropped the connection")
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
