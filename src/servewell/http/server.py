"""uvicorn's server with servewell's shutdown sequence, in one process or several.

On SIGTERM (or SIGINT), :class:`ServewellServer`:

1. marks the app draining at once: readiness answers 503, and every answer from then on
   closes its connection (``Connection: close``);
2. goes on accepting and serving for ``server.shutdown_delay_s`` (default 0), while load
   balancers notice that readiness is false;
3. closes the listening socket, after accepting the connections still waiting in the
   kernel's accept queue (closing it with them there would reset them);
4. lets every connection finish what it has received, a request whose headers or body
   are still arriving included; an idle keep-alive connection closes at once, one that
   has sent nothing yet keeps what is left of its header timeout (``http.protocol``);
5. at ``server.drain_timeout_s`` cuts off what is still unanswered: requests waiting for
   a model, and then any request not answered a moment later, get 503
   ``shutting_down`` with ``Retry-After`` and ``Connection: close``; one log line counts
   them;
6. runs the app's lifespan shutdown: the models stop, waiting for what they compute
   until the drain deadline (at least a second more), and only while a caller still
   waits for it; a model call that hangs is left on its daemon thread, which does not
   hold the process; the process exits 0.

With ``--workers N``, uvicorn's supervisor (:class:`Supervisor`) passes SIGTERM on to
every worker, each running this sequence, and closes its own copy of the listening
socket, so the port closes when the last worker stops listening.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import time
from types import FrameType

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import multiprocess

from servewell.http.app import ServewellApp
from servewell.http.protocol import ServewellHttpProtocol, find_app

logger = logging.getLogger(__name__)

#: After cutting off the requests waiting for a model, how long their 503s may take to
#: be written before any request still unanswered is answered by the protocol instead.
CUT_OFF_GRACE_S = 1.0


class ServewellServer(uvicorn.Server):
    """See the module docstring. Started with the listening sockets it is to serve."""

    def __init__(self, config: uvicorn.Config, supervisor_pid: int | None = None) -> None:
        super().__init__(config)
        self._listeners: list[socket.socket] = []
        self._stop_listening_at: float | None = None
        self._supervisor_pid = supervisor_pid
        self._parent_pid: int | None = None
        """A worker's supervisor: when it is gone (killed -9), the worker drains and
        exits, rather than serve the port on for ever with nobody to replace it."""

    @property
    def app(self) -> ServewellApp | None:
        return find_app(self.config.loaded_app) if self.config.loaded else None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        app = self.app
        if app is not None:
            app.begin_draining()  # readiness turns false before anything else happens
        super().handle_exit(sig, frame)

    async def on_tick(self, counter: int) -> bool:
        """Whether to stop listening: once asked to exit, after the shutdown delay."""
        if self._parent_pid is not None and os.getppid() != self._parent_pid:
            logger.warning("the supervisor (pid %d) is gone: shutting down", self._parent_pid)
            self._parent_pid = None
            self.handle_exit(signal.SIGTERM, None)
        if not await super().on_tick(counter):
            return False
        now = time.monotonic()
        if self._stop_listening_at is None:
            app = self.app
            if app is not None:
                app.begin_draining()  # also when stopping for another reason
            delay_s = app.settings.server.shutdown_delay_s if app is not None else 0.0
            self._stop_listening_at = now + delay_s
        return self.force_exit or now >= self._stop_listening_at

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        # The servers get copies of the listening sockets and close them when they
        # stop; the originals stay open until the connections waiting in them are taken.
        self._listeners = list(sockets or [])
        # In a worker: its supervisor's pid, as the supervisor knew it when it made the
        # worker (not os.getppid() now: a supervisor killed while the worker imported
        # the app left it a parent of 1, and it served on for ever).
        self._parent_pid = self._supervisor_pid
        copies = [listener.dup() for listener in self._listeners] if sockets else None
        await super().startup(sockets=copies)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        logger.info("shutting down: the port closes, the requests received are answered")
        await self._stop_listening()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        app = self.app
        timeout_s = (
            app.settings.server.drain_timeout_s
            if app is not None
            else self.config.timeout_graceful_shutdown
        )
        if app is not None and timeout_s is not None:
            app.stop_models_by = time.monotonic() + timeout_s  # the drain's deadline
        try:
            await asyncio.wait_for(self._wait_tasks_to_complete(), timeout=timeout_s)
        except TimeoutError:
            await self._cut_off(timeout_s)
        if not self.force_exit:
            await self.lifespan.shutdown()

    async def _stop_listening(self) -> None:
        """Stop accepting: take the connections still waiting to be accepted, close the
        listening sockets (nothing awaited in between, so none is left to reset), then
        serve the connections taken like any other."""
        for server in self.servers:
            server.close()
        waiting: list[socket.socket] = []
        for listener in self._listeners:
            waiting += _waiting_connections(listener)
            listener.close()
        loop = asyncio.get_running_loop()
        for connection in waiting:
            try:
                await loop.connect_accepted_socket(
                    self._new_protocol, connection, ssl=self.config.ssl
                )
            except OSError:
                connection.close()  # the client has gone meanwhile

    def _new_protocol(self) -> asyncio.Protocol:
        """A connection's protocol, as uvicorn's own servers make it."""
        config = self.config
        return config.http_protocol_class(  # type: ignore[call-arg]
            config=config, server_state=self.server_state, app_state=self.lifespan.state
        )

    async def _cut_off(self, timeout_s: float | None) -> None:
        """The drain deadline: refuse what waits for a model, give those answers a
        moment, then answer whatever is still unanswered; one line says how many."""
        app = self.app
        waiting = app.cut_off() if app is not None else 0
        tasks = set(self.server_state.tasks)
        if tasks:
            await asyncio.wait(tasks, timeout=CUT_OFF_GRACE_S)
        unanswered = sum(
            connection.cut_off()
            for connection in list(self.server_state.connections)
            if isinstance(connection, ServewellHttpProtocol)
        )
        logger.warning(
            "drain timeout (%g s) passed: %d requests cut off with 503 shutting_down "
            "(%d waiting for a model, %d more still unanswered)",
            timeout_s,
            waiting + unanswered,
            waiting,
            unanswered,
        )


def _waiting_connections(listener: socket.socket) -> list[socket.socket]:
    """Accept every connection waiting in ``listener``'s accept queue, now."""
    listener.setblocking(False)
    accepted: list[socket.socket] = []
    while True:
        try:
            connection, _ = listener.accept()
        except (BlockingIOError, InterruptedError):
            return accepted
        accepted.append(connection)


class WorkerProcess(multiprocess.Process):
    """A worker process of uvicorn's supervisor, running :class:`ServewellServer`."""

    def __init__(self, config: uvicorn.Config, sockets: list[socket.socket]) -> None:
        self.supervisor_pid = os.getpid()  # made in the supervisor; pickled into the worker
        super().__init__(config, sockets)

    @property
    def server(self) -> uvicorn.Server:
        if self._server is None:
            self._server = ServewellServer(self.config, supervisor_pid=self.supervisor_pid)
        return self._server


class Supervisor(multiprocess.Multiprocess):
    """uvicorn's supervisor of worker processes; once it has passed SIGTERM on to the
    workers it closes its copy of the listening socket, which would otherwise keep the
    port open (and connections waiting in it, unanswered) until the last worker exits."""

    def terminate_all(self) -> None:
        super().terminate_all()
        for listener in self.sockets:
            listener.close()


def run(config: uvicorn.Config) -> None:
    """Serve until SIGTERM: one :class:`ServewellServer`, or ``config.workers`` of them
    under a :class:`Supervisor`. Exits 3 (uvicorn's start-up failure) when one process
    could not start."""
    listener = config.bind_socket()
    if config.workers > 1:
        # uvicorn's supervisor makes its workers by this name (uvicorn's minor version
        # is pinned); they unpickle as WorkerProcess in the spawned processes.
        multiprocess.Process = WorkerProcess  # type: ignore[misc]
        Supervisor(config, sockets=[listener]).run()
        return
    server = ServewellServer(config)
    with contextlib.suppress(KeyboardInterrupt):  # SIGINT: drained already, as on SIGTERM
        server.run(sockets=[listener])
    if not server.started:
        sys.exit(STARTUP_FAILURE)
