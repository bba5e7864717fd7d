"""The inference server as an ASGI app.

``create_app(settings)`` wires it. ``POST`` inference requests (V2 ``/infer``, REST
``:predict``) go straight to the gateway (``serving.gateway``), which takes every step of
their path itself; everything else (health, metadata, metrics, OpenAPI and ``/docs``)
passes the edge middleware (request id, metrics, access log), the guard and the refusals
(``http.refusal``: WebSocket handshakes, inference paths called without ``POST``) on its
way to FastAPI. Models load in the background after start-up, so liveness answers at once
and readiness turns true when every model is warmed up; it turns false again when the
server begins to shut down (``http.server``).
"""

from __future__ import annotations

import asyncio
import logging
import time

from prometheus_client import CollectorRegistry

from servewell.bootstrap import Services
from servewell.errors import NotReady, ShuttingDown, StartupFailed
from servewell.http.chat import CHAT_PATH, ChatCodec
from servewell.http.chat_route import chat_call
from servewell.http.guard import GuardMiddleware
from servewell.http.middleware import EdgeMiddleware
from servewell.http.refusal import RefusalMiddleware
from servewell.http.routes import build_api
from servewell.http.running import RunningServer, start_server
from servewell.http.targets import InferTarget, match_infer
from servewell.http.wire import CALL, BodyBudget, Receive, Scope, Send, read_body, send_reply
from servewell.observability import (
    ACCESS_LOGGER,
    AccessLog,
    LoggerAccessLog,
    ServingMetrics,
    StreamAccessLog,
)
from servewell.serving.admission import Admission
from servewell.serving.call import Call
from servewell.serving.llm_calls import CURRENT_CALL
from servewell.serving.recorder import Recorder
from servewell.serving.startup import exiting_on_startup_failure, record_startup_failure
from servewell.settings import Settings, load_settings

#: Past the drain deadline, how long the models still get to finish a call under way.
MIN_MODEL_STOP_S = 1.0


class ServewellApp:
    """The ASGI application; see the module docstring. Its constructor composes the
    ASGI layers (no I/O); the lifespan builds the :class:`RunningServer`."""

    def __init__(
        self, settings: Settings, recorder: Recorder, services: Services | None = None
    ) -> None:
        self.settings = settings
        self.recorder = recorder
        self.metrics = recorder.metrics
        self.services = services
        self.draining = False
        """Whether the server is shutting down: readiness is false, and every answer
        closes its connection (``http.protocol``)."""
        api = build_api(lambda: self.running, self.metrics, lambda: self.draining)
        self.edge = EdgeMiddleware(
            GuardMiddleware(RefusalMiddleware(api), self._admission), recorder
        )
        self._running: RunningServer | None = None
        self.stop_models_by: float | None = None
        """When (``time.monotonic()``) the models must have stopped: the drain deadline,
        set by ``http.server`` as it begins to drain (unset: the drain timeout from the
        start of the shutdown)."""
        server = settings.server
        self.body_budget = BodyBudget(
            max(server.max_receiving_body_bytes, server.max_body_bytes), server.retry_after_s
        )
        """The request bodies this process holds while they arrive (``wire.read_body``)."""

    @property
    def running(self) -> RunningServer:
        """The started server; NotReady (503) before start-up and after shutdown."""
        if self._running is None:
            raise NotReady("*")
        return self._running

    def fast_lane(self) -> RunningServer | None:
        """The started server when the HTTP protocol may offer it requests to answer
        without awaiting (``http.protocol``), else None."""
        running = self._running
        return running if running is not None and running.fast_lane else None

    def _admission(self) -> Admission:
        return self.running.admission

    # --- lifecycle --------------------------------------------------------------------------

    async def startup(self) -> None:
        """Open the registry and start loading the models (in the background; with
        ``load_before_serving``, wait for them: one that fails fails the start-up)."""
        self.metrics.tally.flush_every()
        self._running = await start_server(
            self.settings, self.services, self.metrics, self.recorder
        )
        if self.settings.server.load_before_serving:
            await self.wait_loaded()
            failures = self._running.pool.failures
            if failures:
                raise StartupFailed(
                    "cannot load " + "; ".join(f"{ref}: {why}" for ref, why in failures.items())
                )

    async def wait_loaded(self) -> None:
        """Return once every model has loaded (or failed to)."""
        if self._running is not None:
            await asyncio.shield(self._running.loading)

    def begin_draining(self) -> None:
        """The server is shutting down (SIGTERM): readiness turns false at once."""
        self.draining = True

    def cut_off(self) -> int:
        """At the drain deadline: answer every request still waiting for a model, and
        every later one, 503 ``shutting_down``; how many were waiting."""
        if self._running is None:
            return 0
        retry_after_s = self.settings.server.retry_after_s
        return self._running.pool.refuse(lambda: ShuttingDown(retry_after_s))

    async def shutdown(self) -> None:
        if self._running is not None:
            await self._running.stop(self._time_to_stop_models())
            self._running = None
        self.metrics.tally.stop()
        self.metrics.close()
        self.recorder.close()

    def _time_to_stop_models(self) -> float:
        """How long the models may take to finish what they compute: what is left of the
        drain timeout, and a moment at least (a model that hangs past it is left behind:
        its thread does not keep the process from exiting)."""
        if self.stop_models_by is None:
            return self.settings.server.drain_timeout_s
        return max(MIN_MODEL_STOP_S, self.stop_models_by - time.monotonic())

    @property
    def is_ready(self) -> bool:
        return self._running is not None and self._running.is_ready and not self.draining

    # --- ASGI -------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            target = match_infer(scope["path"])
            running = self._running
            if target is not None and running is not None:
                await self._infer(running, target, scope, receive, send)
                return
            if scope["path"] == CHAT_PATH and running is not None:
                await self._chat(running, scope, receive, send)
                return
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        await self.edge(scope, receive, send)

    async def _infer(
        self,
        running: RunningServer,
        target: InferTarget,
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        """An inference request through the gateway: the one the HTTP protocol held and
        offered to ``try_now`` (body read, key computed), or a new one."""
        call: Call | None = scope.get(CALL)
        if call is None:
            client = scope.get("client")
            limit, budget = self.settings.server.max_body_bytes, self.body_budget
            call = Call(
                running.codecs[target.protocol],
                scope["path"],
                target.model,
                target.version,
                dict(reversed(scope["headers"])),  # the first of a repeated header
                client[0] if client else None,
                read_body=lambda: read_body(scope, receive, limit, budget),
            )
            scope[CALL] = call  # the protocol tells it if the client leaves
        reply = await running.gateway.handle(call)
        if reply is not None:
            await send_reply(reply, send)

    async def _chat(
        self, running: RunningServer, scope: Scope, receive: Receive, send: Send
    ) -> None:
        """A chat completion through the gateway (``http.chat_route``); a streamed answer
        stops, its upstream read with it, when the client goes away."""
        codec = running.codecs["openai"]
        assert isinstance(codec, ChatCodec)
        limit = self.settings.server.max_body_bytes
        call = await chat_call(
            scope,
            receive,
            codec,
            running.pool,
            limit,
            self.body_budget,
            running.llm,
            running.admission,
        )
        scope[CALL] = call  # the protocol tells it if the client leaves
        llm_call = CURRENT_CALL.set(call.llm)  # until a stream's end tells its usage
        try:
            reply = await running.gateway.handle(call)
            if reply is None:
                return
            if call.llm is not None:
                reply.headers.extend(call.llm.headers())
            call.waiting = asyncio.current_task()  # client_left cancels the sending
            try:
                await send_reply(reply, send)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if not call.gone or task is None or task.uncancel() > 0:
                    raise
            finally:
                call.waiting = None
        finally:
            CURRENT_CALL.reset(llm_call)
            if call.llm is not None and running.llm is not None:
                running.llm.release(call.llm)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    record_startup_failure(exc)
                    # No message: uvicorn would log the reason a second time.
                    await send({"type": "lifespan.startup.failed", "message": ""})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return


def create_app(
    settings: Settings | None = None,
    services: Services | None = None,
    registry: CollectorRegistry | None = None,
    access_log: AccessLog | None = None,
) -> ServewellApp:
    """The server app. Without ``services`` it opens the registry itself at start-up (and
    closes it at shutdown); ``registry`` receives the metrics (a fresh one by default);
    access lines go to ``access_log``, by default to the ``servewell.access`` logger
    (none at all when ``settings.server.access_log`` is off)."""
    settings = settings or load_settings()
    metrics = ServingMetrics(registry or CollectorRegistry())
    if not settings.server.access_log:
        access_log = None
    elif access_log is None:
        access_log = LoggerAccessLog(logging.getLogger(ACCESS_LOGGER))
    return ServewellApp(settings, Recorder(metrics, access_log), services)


def create_app_from_environment() -> ServewellApp:
    """The factory ``servewell serve`` gives uvicorn: settings from the environment and
    ``servewell.yaml``, JSON logs on stdout (each worker process builds its own); access
    lines are written to stdout in batches, off the request's path; log lines a stdout
    nobody reads could not take are counted in ``servewell_log_lines_dropped_total``."""
    from servewell.observability import configure_logging
    from servewell.observability.stdout_writer import stdout_writer

    configure_logging()
    writer = stdout_writer()
    with exiting_on_startup_failure():
        app = create_app(load_settings(), access_log=StreamAccessLog(writer))
    writer.count_drops(app.metrics.log_lines_dropped.inc)
    return app
