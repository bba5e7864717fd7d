"""uvicorn's httptools protocol, offering small inference requests to the gateway's
``try_now`` before the ASGI app.

For a small ``POST`` to an inference path, the protocol holds the request until its body
is complete and hands it to :meth:`~servewell.serving.gateway.Gateway.try_now`; an answer
(a cache hit, or the guard's refusal of one) is written straight to the socket, skipping
the ASGI task, messages and middleware, which cost more than the hit itself. Whatever
``try_now`` declines, or fails on (logged, counted as the error ``fast_lane``), starts the
ASGI cycle as uvicorn would have, with the body already there and the gateway's call in
the scope. Everything else (other methods and paths, ``Expect: 100-continue``, pipelined
requests behind an unfinished one, HTTP/1.0, bodies without a length or over
``MAX_HELD_BYTES``, proxy headers, a client that does not read, ``limit_concurrency``)
never leaves uvicorn's own path; with ``server.fast_lane`` off, nothing is held at all.

A client that closes its connection while its inference request waits for the model
has the gateway's call told (``Call.client_left``): the request leaves the model's
queue instead of being computed for nobody.

The protocol also holds every connection to the edge's limits (``http.edge_limits``):
request line and headers counted as they arrive (431 past ``server.max_header_bytes``),
header and body timeouts (408), the keep-alive timeout, and ``server.max_connections``
(503), with one timer per connection, with the fast lane on or off.

Shutting down (``http.server``): once the app is draining, nothing is held and every
answer closes its connection. :meth:`~ServewellHttpProtocol.shutdown` finishes whatever
the connection has received, a request whose headers are still arriving included (uvicorn
closes those at once, resetting them); a connection that has not sent anything yet keeps
its header timeout to begin. At the drain deadline, :meth:`~ServewellHttpProtocol.cut_off`
answers a request still unanswered 503 ``shutting_down``.

``servewell serve`` names this class in uvicorn's ``http`` setting. It relies on a few of
uvicorn's protocol internals (the per-request ``cycle``, ``on_response_complete``, the
keep-alive hook, the set of connections), so pyproject.toml pins uvicorn's minor
version; the tests run the protocol in every server they start.
"""

from __future__ import annotations

import asyncio
import http
import logging
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from servewell.errors import (
    HeadersTooLarge,
    RequestTimeout,
    ServewellError,
    ShuttingDown,
    TooManyConnections,
)
from servewell.http.app import ServewellApp
from servewell.http.edge_limits import (
    BODY,
    BUSY,
    FRESH,
    HEADERS,
    IDLE,
    Deadline,
    EdgeLimits,
    Phase,
    refusal,
)
from servewell.http.running import RunningServer
from servewell.http.targets import match_infer
from servewell.http.wire import BODY_TIMED_OUT, CALL
from servewell.serving.call import Call
from servewell.serving.reply import header_lines
from servewell.settings import ServerSettings

logger = logging.getLogger(__name__)

#: Bodies held for the fast lane at most (a cached request is small; larger ones stream).
MAX_HELD_BYTES = 64 * 1024
_INFER_PREFIXES = (b"/v1/models/", b"/v2/models/")
_CONTENT_LENGTH = b"content-length"
#: The client's address as a proxy tells it: the ASGI path (uvicorn's proxy-headers
#: middleware) decides what it means.
_PROXY_HEADERS = frozenset((b"x-forwarded-for", b"x-forwarded-proto", b"forwarded"))
_STATUS_LINES = {
    status.value: f"HTTP/1.1 {status.value} {status.phrase}\r\n".encode()
    for status in http.HTTPStatus
}


class ServewellHttpProtocol(HttpToolsProtocol):
    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        app = find_app(self.app)
        self.servewell_app = app
        """The servewell app under uvicorn's wrappers, when there is one."""
        self.lane = app.fast_lane() if app is not None and not config.root_path else None
        """The started server, when requests may be offered to its gateway's try_now."""
        server = app.settings.server if app is not None else ServerSettings()
        self._max_held = min(MAX_HELD_BYTES, server.max_body_bytes)
        self._held: list[bytes] | None = None
        """The body so far of a request held for the fast lane."""
        self._closing = False
        """Whether the request being read is the connection's last (the server stops)."""
        self._defaults: list[tuple[bytes, bytes]] | None = None
        self._default_lines = b""
        self._metrics = app.metrics if app is not None else None
        self._limits = EdgeLimits.from_settings(server, config.timeout_keep_alive)
        self._deadline = Deadline(self.loop, self._limits, self._on_deadline)
        self._now = 0.0
        """The loop's time when the data being parsed arrived."""
        self._max_header_bytes = self._limits.max_header_bytes
        self._min_rate = self._limits.min_body_rate
        self._body_began = 0.0
        """When the request's headers were complete (its body began)."""
        self._body_bytes = 0
        """Bytes of the request's body received so far."""
        self._streamed = 0
        """Bytes received since the parser last made progress it reports (the end of a
        request's headers, a piece of body, the end of a request)."""
        self._uncounted = False
        """Whether the request began in a packet after another request ended there (its
        first bytes are not in ``_streamed``)."""
        self._lingering = False
        """Refused: answered (or not), reading and dropping until the client closes."""

    # --- the connection: the limit on open ones, one deadline each -------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        limit = self._limits.max_connections
        open_now = len(self.connections)
        if open_now <= limit:
            self._deadline.start(self.loop.time())
            return
        refused = TooManyConnections(limit, self._limits.retry_after_s)
        if open_now <= 2 * limit:
            self._refuse(refused)
        else:  # as many refused ones lingering as served ones: no room left to answer
            self._count(refused)
            self._lingering = True
            transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        cycle = self.cycle
        super().connection_lost(exc)
        self._deadline.stop()
        if cycle is not None and not cycle.response_complete:
            call = cycle.scope.get(CALL)
            if isinstance(call, Call):  # an inference request: stop waiting for its model
                call.client_left()

    def _unset_keepalive_if_required(self) -> None:
        pass  # the deadline times idle connections too (it knows when one is busy)

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            return  # refused: dropped, until the client closes
        self._now = self.loop.time()
        # Counted as it arrives, not as the parser hands headers over: it buffers a header
        # line until its end. Whatever is left after the parser's progress (headers
        # complete, body, request complete: each sets it back to 0) is header or trailer
        # bytes in a row; an endless line stops at the limit.
        self._streamed += len(data)
        super().data_received(data)
        if self._streamed > self._max_header_bytes:
            self._refuse(HeadersTooLarge(self._max_header_bytes))

    def on_response_complete(self) -> None:
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self.flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
            return
        deadline = self._deadline
        if deadline.phase == BUSY:  # not reading the next request already
            deadline.phase, deadline.since = IDLE, self.loop.time()

    # --- parser callbacks ---------------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self._lingering:
            return
        super().on_message_begin()
        self._uncounted = self._streamed == 0
        deadline = self._deadline
        if deadline.phase != FRESH:  # a first request's clock runs from the opening
            deadline.since = self._now
        deadline.phase = HEADERS

    def on_headers_complete(self) -> None:
        if self._lingering:
            return
        limit = self._max_header_bytes
        # What arrived since the request began is at least its headers, unless it began
        # behind another in one packet: only then, or past the limit, are they counted.
        if (self._streamed > limit or self._uncounted) and self._header_bytes() > limit:
            self._refuse(HeadersTooLarge(limit))
            return
        self._streamed = 0
        self._deadline.phase, self._deadline.since = BODY, self._now
        self._body_began, self._body_bytes = self._now, 0
        if self.lane is not None and self._may_hold():
            self._held = []
            return
        super().on_headers_complete()
        if self.cycle is not None and self._is_last_request():
            self.cycle.keep_alive = False

    def on_body(self, body: bytes) -> None:
        if self._lingering:
            return
        self._deadline.since = self._now
        self._streamed = 0
        self._body_bytes += len(body)
        if self._body_too_slow():
            self._end_body(RequestTimeout("body", self._limits.body_timeout_s, self._min_rate))
            return
        if self._held is not None:
            self._held.append(body)
            return
        super().on_body(body)

    def on_message_complete(self) -> None:
        if self._lingering:
            return
        self._streamed = 0
        if self._held is None:
            cycle = self.cycle
            if cycle is None:  # a first request upgrading (WebSocket): its protocol's now
                self._deadline.stop()
            answered = cycle is not None and cycle.response_complete and not self.pipeline
            self._deadline.phase = IDLE if answered else BUSY
            self._deadline.since = self._now
            super().on_message_complete()
            return
        self._deadline.phase = BUSY
        body = b"".join(self._held)
        self._held = None
        if self._is_last_request():
            self._start_cycle(body, None)
            return
        assert self.lane is not None
        call = self._call(self.lane, body)
        answer = None
        if call is not None:
            try:
                answer = self.lane.gateway.try_now(call)
            except Exception:
                # Never the client's problem: the app path answers it instead.
                logger.exception("the fast lane failed on request %s", call.request_id or "-")
                self.lane.metrics.count_error("fast_lane")
        if answer is None:
            self._start_cycle(body, call)
            return
        status, parts = answer
        self._write(status, parts)
        self.on_response_complete()  # what uvicorn does after a response: keep-alive, next

    def _unsupported_upgrade_warning(self) -> None:
        # No WebSocket on purpose (``cli.serve.edge_options``): the handshake goes to the
        # app as a plain request, which answers it after the guard and logs it.
        pass

    # --- shutting down ------------------------------------------------------------------------

    def shutdown(self) -> None:
        """The server stops: answer what this connection has received, then close."""
        self._closing = True
        if self._held is not None or self._deadline.phase == HEADERS:
            return  # answered with Connection: close once it has arrived
        if self.cycle is None:
            return  # nothing sent yet: its first request may be on its way (header timeout)
        super().shutdown()  # idle: close now; answering: close after the answer

    def cut_off(self) -> bool:
        """At the drain deadline: answer the request still unanswered here 503
        ``shutting_down`` and close; whether there was one (an answer already begun is
        left to finish)."""
        cycle = self.cycle
        waiting = cycle is not None and not cycle.response_complete
        if self.transport.is_closing() or (waiting and cycle.response_started):
            return False
        if not (waiting or self._deadline.phase == HEADERS or self._held is not None):
            return False
        if cycle is not None and waiting:
            cycle.disconnected = True  # the app's answer, should it come, goes nowhere
            cycle.message_event.set()
        status, message = refusal(
            ShuttingDown(self._limits.retry_after_s), v2=self.url.startswith(b"/v2")
        )
        self._write(status, (message,))
        self._deadline.stop()
        self.transport.close()
        return True

    def _is_last_request(self) -> bool:
        """Whether the request being read is to be this connection's last: the server
        is stopping, or its app draining."""
        app = self.servewell_app
        return self._closing or (app is not None and app.draining)

    def _header_bytes(self) -> int:
        """The request's URL and header lines, as sent (the method and version aside)."""
        return len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)

    def _may_hold(self) -> bool:
        """Whether the request just parsed is one the fast lane may answer."""
        url = self.url
        if (
            self.parser.get_method() != b"POST"
            or not url.startswith(_INFER_PREFIXES)
            or b"?" in url
            or b"%" in url
            or self.expect_100_continue
            or self.parser.get_http_version() != "1.1"
            or not self.parser.should_keep_alive()
            or self.parser.should_upgrade()
            or (self.cycle is not None and not self.cycle.response_complete)
            or self.pipeline
            or self.flow.write_paused  # the client is not reading: let uvicorn pace it
            or self.limit_concurrency is not None  # uvicorn's own check applies then
        ):
            return False
        if not url.isascii():
            return False
        for name, value in self.headers:
            if name == _CONTENT_LENGTH:
                return value.isdigit() and int(value) <= self._max_held
        return False

    def _call(self, lane: RunningServer, body: bytes) -> Call | None:
        """The held request as a gateway call; None when it is not one ``try_now`` may
        see (no inference route, a repeated header, proxy headers)."""
        path = self.url.decode("ascii")
        target = match_infer(path)
        named = dict(self.headers)
        if target is None or len(named) != len(self.headers):
            return None
        if not _PROXY_HEADERS.isdisjoint(named):
            return None
        client = self.client[0] if self.client else None
        codec = lane.codecs[target.protocol]
        return Call(codec, path, target.model, target.version, named, client, body)

    def _write(self, status: int, parts: tuple[bytes | memoryview, ...]) -> None:
        """An answer of our own: status line, the server's headers, then ``parts``."""
        self.transport.write(b"".join((_STATUS_LINES[status], self._server_lines(), *parts)))

    def _server_lines(self) -> bytes:
        """uvicorn's default headers (date, server) as lines; uvicorn makes a new list
        when the date changes, once a second, so the lines are made once per list."""
        default_headers = self.server_state.default_headers
        if default_headers is not self._defaults:
            self._defaults = default_headers
            self._default_lines = header_lines(default_headers)
        return self._default_lines

    def _start_cycle(self, body: bytes, call: Call | None) -> None:
        """Hand a held request to the ASGI app as uvicorn would have, body included (and
        the gateway call made of it, if there is one)."""
        if call is not None:
            self.scope[CALL] = call  # type: ignore[literal-required]
        super().on_headers_complete()
        cycle = self.cycle
        cycle.body.extend(body)
        cycle.more_body = False
        if self._is_last_request():
            cycle.keep_alive = False
        cycle.message_event.set()

    # --- the edge's refusals --------------------------------------------------------------

    def _on_deadline(self, phase: Phase) -> None:
        if self.transport.get_protocol() is not self:
            self._deadline.stop()  # upgraded (WebSocket): that protocol keeps its own time
        elif phase == HEADERS:
            self._refuse(RequestTimeout("headers", self._limits.header_timeout_s))
        elif phase == BODY:
            self._body_stalled()
        else:  # nothing asked (new or idle), or lingered long enough
            self._deadline.stop()
            self.timeout_keep_alive_handler()

    def _body_too_slow(self) -> bool:
        """Whether the body, arriving for longer than the body timeout, averages less
        than the minimum rate (a trickle that never pauses long enough to time out)."""
        elapsed = self._now - self._body_began
        if not self._min_rate or elapsed <= self._limits.body_timeout_s:
            return False
        return self._body_bytes < self._min_rate * elapsed and not self.flow.read_paused

    def _body_stalled(self) -> None:
        """No piece of the body for the body timeout: 408, unless it is the server that
        is not reading (the body so far not consumed yet, a 100 Continue not sent)."""
        cycle = self.cycle if self._held is None else None
        if self.flow.read_paused or (cycle is not None and cycle.waiting_for_100_continue):
            self._deadline.since = self.loop.time()
            return
        self._end_body(RequestTimeout("body", self._limits.body_timeout_s))

    def _end_body(self, timed_out: RequestTimeout) -> None:
        """Give up on a body that stopped or trickles: 408 and stop reading here."""
        cycle = self.cycle if self._held is None else None
        if cycle is None:  # held for the fast lane: the app never saw it
            self._refuse(timed_out)
        elif cycle.response_started:  # answered already (a 401, a 413), the rest never came
            self._stop(None)
        else:  # the app waits for it, and ends the request as a 408 (wire.read_body)
            cycle.scope[BODY_TIMED_OUT] = timed_out  # type: ignore[literal-required]
            self._stop(timed_out)

    def _refuse(self, exc: ServewellError) -> None:
        """Answer ``exc`` for a request (or a connection) the app never sees, and stop;
        behind the answers to earlier requests (pipelined) still under way, if any."""
        if self._lingering:
            return
        self._count(exc)
        reading_body = self._deadline.phase == BODY and self._held is None
        earlier = None if reading_body else self.cycle  # else the request's own (trailers)
        if earlier is None or earlier.response_complete:
            self._stop(exc)
            return
        self._lingering = True  # nothing more is parsed; the earlier answers go first
        self._deadline.phase = BUSY
        earlier.on_response = lambda: self._after_earlier(exc)

    def _after_earlier(self, refused: ServewellError) -> None:
        self.server_state.total_requests += 1
        self._stop(refused)

    def _count(self, exc: ServewellError) -> None:
        if self._metrics is not None:
            self._metrics.count_error(exc.code)

    def _stop(self, answer: ServewellError | None) -> None:
        """Read no more requests here: release the app if it waits for this request's
        body, answer (unless its response is under way), then linger until the client
        closes."""
        self._lingering = True
        if self.transport.is_closing():
            self._deadline.stop()
            return
        self._held = None
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            if cycle.response_started:
                answer = None  # not in the middle of another answer
            cycle.disconnected = True  # the app sees http.disconnect, its sends are dropped
            cycle.message_event.set()
        if answer is not None:
            status, message = refusal(answer)
            self._write(status, (message,))
        self._deadline.linger(self.loop.time())
        self.flow.resume_reading()
        if self.transport.can_write_eof():
            self.transport.write_eof()
        else:
            self.transport.close()


def find_app(app: Any) -> ServewellApp | None:
    """The servewell app under uvicorn's wrappers (proxy headers, ...)."""
    for _ in range(8):
        if isinstance(app, ServewellApp):
            return app
        app = getattr(app, "app", None)
        if app is None:
            return None
    return None
