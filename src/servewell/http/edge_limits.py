"""What a client may hold of a server process: the limits ``http.protocol`` keeps on
every connection, before a request reaches the app.

* The request line and headers: at most ``server.max_header_bytes``, counted as they
  arrive (431 Request Header Fields Too Large).
* They must arrive within ``server.header_timeout_s`` of the connection's opening (its
  first request) or of the request's first byte (408 Request Timeout; a connection that
  sends nothing at all is just closed).
* A body may pause at most ``server.body_timeout_s`` between two pieces, and once it
  has been arriving that long it must average ``server.min_body_rate_bytes_s`` (408).
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
import contextvars
import math
import resource
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

from servewell.errors import ServewellError
from servewell.http.problems import to_reply
from servewell.settings import ServerSettings

#: How long a refused connection is read (and its bytes dropped) before it is closed.
LINGER_S = 2.0
#: Open files a server process needs besides its connections: listening socket, event
#: loop, logs, registry database, Redis, metric files, model files while loading.
FILE_RESERVE = 128
_CONNECTION_CLOSE = (b"connection", b"close")
#: The timer waits at least this long (a limit set below it is kept this late).
_SHORTEST_WAIT_S = 0.05


#: Where a connection is, for its deadline: plain strings, not an Enum, as a phase
#: changes several times a request and an Enum member costs more to look up than that.
Phase = Literal["fresh", "headers", "body", "busy", "idle", "linger"]
FRESH: Final = "fresh"
"""Open, nothing received yet: the header timeout, from the opening."""
HEADERS: Final = "headers"
"""A request began; its headers are not complete: the header timeout."""
BODY: Final = "body"
"""Headers read, the body is not complete: the body timeout, from the last piece."""
BUSY: Final = "busy"
"""The request is complete and being answered: no deadline of the edge's."""
IDLE: Final = "idle"
"""Answered, waiting for the next request: the keep-alive timeout."""
LINGER: Final = "linger"
"""Refused, reading and dropping until the client closes: ``LINGER_S``."""


@dataclass(frozen=True, slots=True)
class EdgeLimits:
    max_header_bytes: int
    header_timeout_s: float
    body_timeout_s: float
    min_body_rate: int
    """Bytes a second a body must average once it has arrived for ``body_timeout_s``."""
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
            server.min_body_rate_bytes_s,
            keep_alive_s,
            connection_limit(server.max_connections),
            server.retry_after_s,
        )

    def timeouts(self) -> dict[Phase, float]:
        return {
            FRESH: self.header_timeout_s,
            HEADERS: self.header_timeout_s,
            BODY: self.body_timeout_s,
            BUSY: math.inf,
            IDLE: self.keep_alive_s,
            LINGER: LINGER_S,
        }


def connection_limit(configured: int) -> int:
    """``configured``, or what the process's open-file limit leaves room for: every
    connection is a file, and refused ones (lingering) may be as many again."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return configured
    return max(1, min(configured, (soft - FILE_RESERVE) // 2))


def refusal(exc: ServewellError, v2: bool = False) -> tuple[int, bytes]:
    """The status of the answer to a refused request or connection, and everything
    after its status line and the server's own headers (it closes the connection); in
    the V2 error shape for a V2 path."""
    reply = to_reply(exc, v2=v2)
    reply.headers.append(_CONNECTION_CLOSE)
    return reply.status, reply.message()


class Deadline:
    """One timer per connection, for the time limit of the phase it is in.

    The protocol moves a connection from phase to phase by setting :attr:`phase` and
    :attr:`since`: two stores on the request path, no timer re-armed. The timer fires at
    least once a :attr:`period` (the shortest limit) and looks: past the phase's
    deadline it calls ``expire`` with the phase (which closes, lingers or postpones),
    else it waits for what is left or one more period, whichever is shorter, so that no
    phase entered meanwhile is looked at late.
    """

    __slots__ = (
        "_context", "_expire", "_loop", "_stopped", "_timeouts", "_timer", "period", "phase",
        "since",
    )  # fmt: skip

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        limits: EdgeLimits,
        expire: Callable[[Phase], None],
    ) -> None:
        self._loop = loop
        self._timeouts = limits.timeouts()
        self._expire = expire
        self.period = max(
            _SHORTEST_WAIT_S,
            min(limits.header_timeout_s, limits.body_timeout_s, limits.keep_alive_s),
        )
        self.phase: Phase = FRESH
        self.since = 0.0
        """When the phase began (for a body: when its last piece came)."""
        self._timer: asyncio.TimerHandle | None = None
        self._stopped = False
        self._context = contextvars.Context()
        """The timer's own: not that of the request that happened to arm it (whose
        record and request id would otherwise outlive it)."""

    def start(self, now: float) -> None:
        """A new connection: fresh from ``now``."""
        self.phase, self.since = FRESH, now
        self._arm(now + self.period)

    def linger(self, now: float) -> None:
        self.phase, self.since = LINGER, now
        self._arm(now + LINGER_S)

    def stop(self) -> None:
        self._stopped = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _arm(self, at: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._loop.call_at(at, self._fire, context=self._context)

    def _fire(self) -> None:
        self._timer = None
        now = self._loop.time()
        if self.since + self._timeouts[self.phase] <= now:
            self._expire(self.phase)
            if self._stopped or self._timer is not None:
                return  # closed, or lingering on a timer of its own
        due = self.since + self._timeouts[self.phase]
        self._arm(min(max(due, now + _SHORTEST_WAIT_S), now + self.period))
