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

Shutting down (``http.server``): once the app is draining, nothing is held and every
answer closes its connection. :meth:`~ServewellHttpProtocol.shutdown` finishes whatever
the connection has received, a request whose headers are still arriving included (uvicorn
closes those at once, resetting them); a connection that has not sent anything yet gets
the keep-alive timeout to begin. At the drain deadline, :meth:`~ServewellHttpProtocol.cut_off`
answers a request still unanswered 503 ``shutting_down``.

``servewell serve`` names this class in uvicorn's ``http`` setting. It relies on a few of
uvicorn's protocol internals (the per-request ``cycle``, ``on_response_complete``, the
keep-alive timer), so pyproject.toml pins uvicorn's minor version; the tests run the
protocol in every server they start.
"""

from __future__ import annotations

import asyncio
import http
import logging
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from servewell.errors import ShuttingDown
from servewell.http.app import ServewellApp
from servewell.http.problems import to_reply
from servewell.http.running import RunningServer
from servewell.http.targets import match_infer
from servewell.http.wire import CALL
from servewell.serving.gateway import Call
from servewell.serving.reply import header_lines

logger = logging.getLogger(__name__)

#: Bodies held for the fast lane at most (a cached request is small; larger ones stream).
MAX_HELD_BYTES = 64 * 1024
_INFER_PREFIXES = (b"/v1/models/", b"/v2/models/")
_CONTENT_LENGTH = b"content-length"
#: The client's address as a proxy tells it: the ASGI path (uvicorn's proxy-headers
#: middleware) decides what it means.
_PROXY_HEADERS = frozenset((b"x-forwarded-for", b"x-forwarded-proto", b"forwarded"))
_CLOSE_LINE = b"connection: close\r\n"
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
        self._max_held = (
            min(MAX_HELD_BYTES, app.settings.server.max_body_bytes) if app is not None else 0
        )
        self._held: list[bytes] | None = None
        """The body so far of a request held for the fast lane."""
        self._closing = False
        """Whether the request being read is the connection's last (the server stops)."""
        self._reading = False
        """Whether a request has begun and its headers are not complete yet."""
        self._idle_since: float | None = None
        """When the connection last went idle (a response done, nothing pending)."""
        self._defaults: list[tuple[bytes, bytes]] | None = None
        self._default_lines = b""

    # Keep-alive: uvicorn cancels and re-creates a timer on every request; here one timer
    # per connection checks, when it fires, how long the connection has been idle.

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self.timeout_keep_alive_task is not None:
            self.timeout_keep_alive_task.cancel()
            self.timeout_keep_alive_task = None

    def _unset_keepalive_if_required(self) -> None:
        self._idle_since = None  # busy: data arrived, or a response is being sent

    def on_response_complete(self) -> None:
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self.flow.resume_reading()
        if self.pipeline:
            self._idle_since = None
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
            return
        self._go_idle()

    def _go_idle(self) -> None:
        """Idle from now: closed after the keep-alive timeout unless a request begins."""
        self._idle_since = self.loop.time()
        if self.timeout_keep_alive_task is None:
            self.timeout_keep_alive_task = self.loop.call_later(
                self.timeout_keep_alive, self._check_keep_alive
            )

    def _check_keep_alive(self) -> None:
        self.timeout_keep_alive_task = None
        if self._idle_since is None:
            return  # busy now: the next response arms the timer again
        remaining = self._idle_since + self.timeout_keep_alive - self.loop.time()
        if remaining <= 0:
            self.timeout_keep_alive_handler()
        else:
            self.timeout_keep_alive_task = self.loop.call_later(remaining, self._check_keep_alive)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._idle_since = None  # busy: a request began (perhaps in the last packet)
        self._reading = True

    def on_headers_complete(self) -> None:
        self._reading = False
        if self.lane is not None and self._may_hold():
            self._held = []
            return
        super().on_headers_complete()
        if self.cycle is not None and self._is_last_request():
            self.cycle.keep_alive = False

    def on_body(self, body: bytes) -> None:
        if self._held is not None:
            self._held.append(body)
            return
        super().on_body(body)

    def on_message_complete(self) -> None:
        if self._held is None:
            super().on_message_complete()
            return
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
        self.transport.write(b"".join((_STATUS_LINES[status], self._server_lines(), *parts)))
        self.on_response_complete()  # what uvicorn does after a response: keep-alive, next

    def shutdown(self) -> None:
        """The server stops: answer what this connection has received, then close."""
        self._closing = True
        if self._held is not None or self._reading:
            return  # answered with Connection: close once it has arrived
        if self.cycle is None:
            self._go_idle()  # nothing sent yet: its first request may be on its way
            return
        super().shutdown()  # idle: close now; answering: close after the answer

    def cut_off(self) -> bool:
        """At the drain deadline: answer the request still unanswered here 503
        ``shutting_down`` and close; whether there was one (an answer already begun is
        left to finish)."""
        cycle = self.cycle
        waiting = cycle is not None and not cycle.response_complete
        if self.transport.is_closing() or (waiting and cycle.response_started):
            return False
        if not (waiting or self._reading or self._held is not None):
            return False
        if cycle is not None and waiting:
            cycle.disconnected = True  # the app's answer, should it come, goes nowhere
            cycle.message_event.set()
        app = self.servewell_app
        retry_after_s = app.settings.server.retry_after_s if app is not None else 1
        reply = to_reply(ShuttingDown(retry_after_s), v2=self.url.startswith(b"/v2"))
        status = _STATUS_LINES[reply.status]
        self.transport.write(status + self._server_lines() + _CLOSE_LINE + reply.message())
        self.transport.close()
        return True

    def _is_last_request(self) -> bool:
        """Whether the request being read is to be this connection's last: the server
        is stopping, or its app draining."""
        app = self.servewell_app
        return self._closing or (app is not None and app.draining)

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
            or self._is_last_request()  # its answer closes the connection: uvicorn's path
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


def find_app(app: Any) -> ServewellApp | None:
    """The servewell app under uvicorn's wrappers (proxy headers, ...)."""
    for _ in range(8):
        if isinstance(app, ServewellApp):
            return app
        app = getattr(app, "app", None)
        if app is None:
            return None
    return None
