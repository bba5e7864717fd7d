"""uvicorn's httptools protocol, with response-cache hits answered before the ASGI app.

For a small ``POST`` to an inference path, the protocol holds the request until its body
is complete and offers it to the app's :class:`~servewell.http.fastlane.FastLane`; a hit
(or the guard's refusal of one) is written straight to the socket. Whatever the lane
declines starts the ASGI cycle exactly as uvicorn would have, with the body already
there. Everything else (other methods and paths, ``Expect: 100-continue``, pipelined
requests behind an unfinished one, HTTP/1.0, bodies without a length or over
``MAX_HELD_BYTES``) never leaves uvicorn's own path.

``servewell serve`` names this class in uvicorn's ``http`` setting (uvicorn imports a
protocol class named there). It relies on uvicorn's protocol internals (the per-request
``cycle``, ``on_response_complete``, the keep-alive timer), so pyproject.toml pins
uvicorn's minor version; the tests run the protocol in every server they start.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from servewell.http.fastlane import CACHE_KEY, FastLane

#: Bodies held for the fast lane at most (a cached request is small; larger ones stream).
MAX_HELD_BYTES = 64 * 1024
_INFER_PREFIXES = (b"/v1/models/", b"/v2/models/")
_CONTENT_LENGTH = b"content-length"


class ServewellHttpProtocol(HttpToolsProtocol):
    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.lane = find_lane(self.app) if not config.root_path else None
        self._held: list[bytes] | None = None
        """The body so far of a request held for the fast lane."""
        self._closing = False
        self._idle_since: float | None = None
        """When the connection last went idle (a response done, nothing pending)."""

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
        # uvicorn's own, minus the ASGI scope: a request the lane answers never needs
        # one, so it is built only when the request goes to the app (_build_scope).
        self.url = b""
        self.expect_100_continue = False
        self.headers = []
        self._idle_since = None  # busy: a request began (perhaps in the last packet)

    def on_headers_complete(self) -> None:
        if self.lane is not None and self.lane.may_answer and self._may_hold():
            self._held = []
            return
        self._build_scope()
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
        client = self.client[0] if self.client else None
        response = self.lane.answer(
            self.url.decode("ascii"), self.headers, body, client, self.server_state.default_headers
        )
        if response is None:
            self._start_cycle(body, self.lane.declined_key)
            return
        self.transport.write(response)
        self.on_response_complete()  # what uvicorn does after a response: keep-alive, next

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
                return value.isdigit() and int(value) <= MAX_HELD_BYTES
        return False

    def _build_scope(self) -> None:
        """The scope uvicorn's ``on_message_begin`` builds (its headers list is the one
        ``on_header`` has been filling)."""
        self.scope = {  # type: ignore[typeddict-item]
            "type": "http",
            "asgi": {"version": self.asgi_version, "spec_version": "2.3"},
            "http_version": "1.1",
            "server": self.server,
            "client": self.client,
            "scheme": self.scheme,  # type: ignore[typeddict-item]
            "root_path": self.root_path,
            "headers": self.headers,
            "state": self.app_state.copy(),
        }

    def _start_cycle(self, body: bytes, cache_key: str | None) -> None:
        """Hand a held request to the ASGI app as uvicorn would have, body included (and
        the cache key the lane computed for it, if it did)."""
        self._build_scope()
        if cache_key is not None:
            self.scope[CACHE_KEY] = cache_key  # type: ignore[literal-required]
        super().on_headers_complete()
        cycle = self.cycle
        cycle.body.extend(body)
        cycle.more_body = False
        if self._closing:
            cycle.keep_alive = False
        cycle.message_event.set()


def find_lane(app: Any) -> FastLane | None:
    """The fast lane of the servewell app under uvicorn's wrappers (proxy headers, ...)."""
    for _ in range(8):
        lane = getattr(app, "lane", None)
        if isinstance(lane, FastLane):
            return lane
        app = getattr(app, "app", None)
        if app is None:
            return None
    return None
