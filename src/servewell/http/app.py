"""The inference server as an ASGI app.

``create_app(settings)`` wires it: every request passes the edge middleware (request id,
metrics, access log); ``POST`` inference requests (V2 ``/infer``, REST ``:predict``) take a
plain-ASGI fast path straight to their protocol adapter; everything else (health,
metadata, metrics, OpenAPI and ``/docs``) goes through FastAPI. Models load in the
background after start-up, so liveness answers at once and readiness turns true when
every model is warmed up.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import sys

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from servewell.bootstrap import Services, build_protection, build_services
from servewell.core.ref import ModelRef
from servewell.core.validation import InputLimits
from servewell.errors import NotReady
from servewell.http import rest, v2
from servewell.http.fastlane import CACHE_KEY, FastLane
from servewell.http.guard import GuardMiddleware
from servewell.http.middleware import EdgeMiddleware
from servewell.http.problems import to_reply
from servewell.http.targets import InferTarget, match_infer, version_number
from servewell.http.wire import (
    ClientDisconnected,
    Receive,
    Reply,
    Scope,
    Send,
    pack_reply,
    read_body,
    unpack_reply,
)
from servewell.http.wire import header as find_header
from servewell.observability import (
    ACCESS_LOGGER,
    AccessLog,
    LoggerAccessLog,
    ServingMetrics,
    StreamAccessLog,
    current_request,
)
from servewell.serving.deployment import Deployment
from servewell.serving.pool import ModelPool
from servewell.serving.predictor import Predictor
from servewell.serving.protection import Protection
from servewell.settings import Settings, load_settings

logger = logging.getLogger(__name__)

CACHE_CONTROL = b"cache-control"
HIT = (b"x-cache", b"hit")
MISS = (b"x-cache", b"miss")


class ServewellApp:
    """The ASGI application; see the module docstring."""

    def __init__(
        self, settings: Settings, metrics: ServingMetrics, services: Services | None = None
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.services = services
        self.api: FastAPI | None = None
        self.edge: EdgeMiddleware | None = None
        self.lane: FastLane | None = None
        """Answers cache hits inside the HTTP protocol (``http.protocol``)."""
        self.pool: ModelPool | None = None
        self.predictor: Predictor | None = None
        self.protection: Protection | None = None
        self._owns_services = services is None
        self._loading: asyncio.Task[None] | None = None

    # --- lifecycle --------------------------------------------------------------------------

    async def startup(self) -> None:
        """Open the registry and start loading the models (in the background)."""
        if self.services is None:
            self.services = await asyncio.to_thread(build_services, self.settings)
        refs = [ModelRef.parse(text) for text in self.settings.server.models]
        is_alone = self.edge.is_alone if self.edge is not None else (lambda: False)
        self.pool = ModelPool(self.services, refs, self.metrics, is_alone)
        self.metrics.tally.flush_every()
        self.protection = build_protection(self.settings, self.services)
        await self.protection.start()
        limits = self.settings.validation
        self.predictor = Predictor(
            self.pool,
            InputLimits(limits.max_rows, limits.max_text_bytes, limits.max_json_depth),
            self.protection,
            self.metrics,
        )
        self._loading = asyncio.create_task(self._load(self.pool), name="servewell-load-models")
        if self.settings.server.load_before_serving:
            await self.wait_loaded()

    @staticmethod
    async def _load(pool: ModelPool) -> None:
        await pool.load()
        # Everything loaded so far (libraries, models) lives as long as the process: move
        # it out of the garbage collector's sight, so full collections stay short and do
        # not show up as latency spikes under load.
        gc.collect()
        gc.freeze()

    async def wait_loaded(self) -> None:
        """Return once every model has loaded (or failed to)."""
        if self._loading is not None:
            await asyncio.shield(self._loading)

    async def shutdown(self) -> None:
        if self._loading is not None and not self._loading.done():
            self._loading.cancel()
            await asyncio.gather(self._loading, return_exceptions=True)
        if self.pool is not None:
            await self.pool.close()
        if self.protection is not None:
            await self.protection.stop()
        if self.services is not None and self._owns_services:
            self.services.close()
            self.services = None
        self.metrics.tally.stop()
        self.metrics.close()
        if self.edge is not None and self.edge.access_log is not None:
            self.edge.access_log.close()

    @property
    def is_ready(self) -> bool:
        return self.pool is not None and self.pool.is_ready

    def require_pool(self) -> ModelPool:
        if self.pool is None:
            raise NotReady("*")
        return self.pool

    # --- ASGI -------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        assert self.edge is not None, "build the app with create_app()"
        await self.edge(scope, receive, send)

    async def route(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Inference on the fast path; everything else through FastAPI."""
        if scope["method"] == "POST":
            target = match_infer(scope["path"])
            if target is not None:
                await self._infer(target, scope, receive, send)
                return
        assert self.api is not None
        await self.api(scope, receive, send)

    async def _infer(self, target: InferTarget, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            body = await read_body(scope, receive, self.settings.server.max_body_bytes)
            reply = await self.handle_infer(
                target,
                body,
                find_header(scope, b"content-type"),
                find_header(scope, v2.HEADER_LENGTH),
                find_header(scope, CACHE_CONTROL),
                scope.get(CACHE_KEY),
            )
        except ClientDisconnected:
            raise
        except Exception as exc:
            reply = to_reply(exc, v2=target.protocol == "v2")
        await reply.send(send)

    async def handle_infer(
        self,
        target: InferTarget,
        body: bytes,
        content_type: bytes | None,
        header_length: bytes | None,
        cache_control: bytes | None = None,
        known_key: str | None = None,
    ) -> Reply:
        """One inference request, whatever route it came by, through the response cache
        when it is on for the model; raises on failure. ``known_key``: the cache key the
        fast lane computed for this request before it declined it."""
        if self.predictor is None:
            raise NotReady(target.model)
        ref = ModelRef(target.model, version=version_number(target))
        deployment = self.predictor.resolve(ref)
        layer = self.protection.cache if self.protection is not None else None
        key = None
        if layer and known_key and layer.names(known_key, deployment.version):
            key = known_key  # the fast lane's, for this very request
        elif layer is not None:
            key = layer.key_for(
                deployment.version, target.protocol, content_type, header_length, body
            )
        if layer is None or key is None:
            return await self._answer(target, ref, deployment, body, content_type, header_length)
        use_cache = cache_control is None or b"no-cache" not in cache_control.lower()
        if use_cache:
            entry = await layer.get(key)
            cached = unpack_reply(entry) if entry is not None else None
            if cached is not None:
                self.count_cache(deployment.name, "hit")
                cached.headers.append(HIT)
                return cached
        reply = await self._answer(target, ref, deployment, body, content_type, header_length)
        await layer.store(deployment.name, key, pack_reply(reply))
        self.count_cache(deployment.name, "miss" if use_cache else "bypass")
        reply.headers.append(MISS)
        return reply

    async def _answer(
        self,
        target: InferTarget,
        ref: ModelRef,
        deployment: Deployment,
        body: bytes,
        content_type: bytes | None,
        header_length: bytes | None,
    ) -> Reply:
        """Decode, predict, encode: the answer the response cache stores."""
        assert self.predictor is not None
        if target.protocol == "v2":
            depth = self.settings.validation.max_json_depth
            decoded = v2.decode_request(ref, body, content_type, header_length, depth)
            response = await self.predictor.infer(decoded.request, deployment)
            return v2.encode_response(response, decoded.binary_outputs)
        request = rest.decode_request(
            ref, deployment.signature, body, content_type, self.settings.validation.max_json_depth
        )
        response = await self.predictor.infer(request, deployment)
        return rest.encode_response(deployment.signature, response)

    def count_cache(self, model: str, outcome: str) -> None:
        """A response cache outcome in the metrics and the access line."""
        self.metrics.count_cache(model, outcome)
        record = current_request()
        if record is not None:
            record.cache = outcome
        layer = self.protection.cache if self.protection is not None else None
        evictions = layer.new_evictions() if layer is not None else 0
        if evictions:
            self.metrics.cache_evictions.inc(evictions)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    logger.exception("start-up failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
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
    from servewell.http.routes import build_api

    settings = settings or load_settings()
    metrics = ServingMetrics(registry or CollectorRegistry())
    app = ServewellApp(settings, metrics, services)
    app.api = build_api(app)
    if not settings.server.access_log:
        access_log = None
    elif access_log is None:
        access_log = LoggerAccessLog(logging.getLogger(ACCESS_LOGGER))
    guarded = GuardMiddleware(
        app.route,
        lambda: app.protection.guard if app.protection else None,
        settings.auth.open_paths,
        metrics,
    )
    app.edge = EdgeMiddleware(guarded, metrics, access_log)
    app.lane = FastLane(app, app.edge, guarded)
    return app


def create_app_from_environment() -> ServewellApp:
    """The factory ``servewell serve`` gives uvicorn: settings from the environment and
    ``servewell.yaml``, JSON logs on stdout (each worker process builds its own); access
    lines are written to stdout in batches, off the request's path."""
    from servewell.observability import configure_logging

    configure_logging()
    return create_app(load_settings(), access_log=StreamAccessLog(sys.stdout.buffer))
