"""What a client may hold of a server process: the limits ``http.protocol`` keeps on
every connection, before a request reaches the app.

* The request line and headers: at most ``server.max_header_bytes``, counted as they
  arrive (431 Request Header Fields Too Large).
* They must arrive within ``server.header_timeout_s`` of the connection's opening (its
  first request) or of the request's first byte (408 Request Timeout; a connection that
  sends nothing at all is just closed).
* A body may pause at most ``server.body_timeout_s`` between two pieces (408).
* An idle keep-alive connection closes after uvicorn's ``timeout_keep_alive``.
* Past ``server.max_connections`` open connections, a new one is answered 503 with
  ``Retry-After`` (:func:`connection_limit`: lower when the open-file limit says so).

One :class:`Deadline` per connection times whichever phase it is in. A refused
connection is answered (``problems.to_reply``, with ``Connection: close``), then
*lingers*: half-closed, it reads and drops what the client still sends until the client
closes, ``LINGER_S`` at most. Closing a socket with unread bytes resets it, and a reset
can destroy the answer before the client has read it.

Every limit holds per server process: with ``--workers N`` each worker has its own.
"""

from __future__ import annotations

import asyncio
import enum
import math
import resource
from collections.abc import Callable
from dataclasses import dataclass

from servewell.errors import ServewellError
from servewell.http.problems import to_reply
from servewell.settings import ServerSettings

#: How long a refused connection is read (and its bytes dropped) before it is closed.
LINGER_S = 2.0
#: Open files a server process needs besides its connections: listening socket, event
#: loop, logs, registry database, Redis, metric files, model files while loading.
FILE_RESERVE = 128
_CONNECTION_CLOSE = (b"connection", b"close")


class Phase(enum.Enum):
    """Where a connection is, for its deadline."""

    FRESH = "fresh"
    """Open, nothing received yet: the header timeout, from the opening."""
    HEADERS = "headers"
    """A request began; its headers are not complete: the header timeout."""
    BODY = "body"
    """Headers read, the body is not complete: the body timeout, from the last piece."""
    BUSY = "busy"
    """The request is complete and being answered: no deadline of the edge's."""
    IDLE = "idle"
    """Answered, waiting for the next request: the keep-alive timeout."""
    LINGER = "linger"
    """Refused, reading and dropping until the client closes: ``LINGER_S``."""


@dataclass(frozen=True, slots=True)
class EdgeLimits:
    max_header_bytes: int
    header_timeout_s: float
    body_timeout_s: float
    keep_alive_s: float
    max_connections: int
    """The effective limit: the setting, or less when the open-file limit says so."""
    retry_after_s: int

    @classmethod
    def from_settings(cls, server: ServerSettings, keep_alive_s: float) -> EdgeLimits:
        return cls(
            server.max_header_bytes,
            server.header_timeout_s,
            server.body_timeout_s,
            keep_alive_s,
            connection_limit(server.max_connections),
            server.retry_after_s,
        )

    def timeouts(self) -> dict[Phase, float]:
        return {
            Phase.FRESH: self.header_timeout_s,
            Phase.HEADERS: self.header_timeout_s,
            Phase.BODY: self.body_timeout_s,
            Phase.BUSY: math.inf,
            Phase.IDLE: self.keep_alive_s,
            Phase.LINGER: LINGER_S,
        }


def connection_limit(configured: int) -> int:
    """``configured``, or what the process's open-file limit leaves room for: every
    connection is a file, and refused ones (lingering) may be as many again."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return configured
    return max(1, min(configured, (soft - FILE_RESERVE) // 2))


def refusal(exc: ServewellError) -> tuple[int, bytes]:
    """The status of the answer to a refused request or connection, and everything
    after its status line and the server's own headers (it closes the connection)."""
    reply = to_reply(exc)
    reply.headers.append(_CONNECTION_CLOSE)
    return reply.status, reply.message()


class Deadline:
    """One timer per connection, for the time limit of the phase it is in.

    Moving to another phase sets two attributes; the timer is re-armed only when the new
    deadline comes before the armed one. When it fires before the phase's deadline (the
    phase changed since), it re-arms for what is left; past the deadline it calls
    ``expire`` with the phase. A lingering connection stays lingering.
    """

    __slots__ = ("_due", "_expire", "_loop", "_since", "_timeouts", "_timer", "phase")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        limits: EdgeLimits,
        expire: Callable[[Phase], None],
    ) -> None:
        self._loop = loop
        self._timeouts = limits.timeouts()
        self._expire = expire
        self.phase = Phase.BUSY
        self._since = 0.0
        self._due = math.inf
        self._timer: asyncio.TimerHandle | None = None

    def enter(self, phase: Phase, now: float) -> None:
        """The connection is in ``phase`` from ``now`` on."""
        if self.phase is Phase.LINGER:
            return
        self.phase = phase
        self._since = now
        due = now + self._timeouts[phase]
        if due < self._due:
            self._arm(due)

    def begin_request(self, now: float) -> None:
        """A request's first byte: a new connection's first request keeps the time of
        the opening, later ones start their header clock now."""
        if self.phase is Phase.FRESH:
            self.phase = Phase.HEADERS
        elif self.phase is not Phase.HEADERS:
            self.enter(Phase.HEADERS, now)

    def touch(self, now: float) -> None:
        """Progress within the phase (a piece of body): its clock starts again."""
        self._since = now

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._due = math.inf

    def _arm(self, due: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._due = due
        self._timer = self._loop.call_at(due, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._due = math.inf
        phase = self.phase
        due = self._since + self._timeouts[phase]
        if due == math.inf:
            return  # busy: the next phase with a deadline arms the timer again
        if due > self._loop.time():
            self._arm(due)
        else:
            self._expire(phase)
