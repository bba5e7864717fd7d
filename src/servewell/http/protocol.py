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

from servewell.http.app import ServewellApp
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
        self.lane = app.fast_lane() if app is not None and not config.root_path else None
        """The started server, when requests may be offered to its gateway's try_now."""
        self._max_held = (
            min(MAX_HELD_BYTES, app.settings.server.max_body_bytes) if app is not None else 0
        )
        self._held: list[bytes] | None = None
        """The body so far of a request held for the fast lane."""
        self._closing = False
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

    def on_headers_complete(self) -> None:
        if self.lane is not None and self._may_hold():
            self._held = []
            return
        super().on_headers_complete()

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
        if self._closing:
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

    def _unsupported_upgrade_warning(self) -> None:
        # No WebSocket on purpose (``cli.serve.edge_options``): the handshake goes to the
        # app as a plain request, which answers it after the guard and logs it.
        pass

    def shutdown(self) -> None:
        if self._held is not None:  # finish the held request on the ASGI path, then close
            self._closing = True
            return
        super().shutdown()

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
        if self._closing:
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
