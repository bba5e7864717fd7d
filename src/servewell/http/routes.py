"""FastAPI routes: health, metadata, metrics, and the inference routes' documentation.

Inference requests never reach FastAPI (the app hands them to the gateway); the table of
inference routes (``http.targets``) adds them to ``/openapi.json``, so ``/docs`` shows
them too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from servewell.core.feedback import Label, labels_from_json
from servewell.core.ref import check_name, version_in_path
from servewell.errors import ServewellError
from servewell.http import rest, v2
from servewell.http.chat import CHAT_OPERATION, CHAT_PATH, chat_models
from servewell.http.jobs import add_job_routes
from servewell.http.problems import to_reply
from servewell.http.repository import add_repository_routes
from servewell.http.running import RunningServer
from servewell.http.targets import INFER_ROUTES, InferRoute
from servewell.http.wire import check_json, load_json, read_body
from servewell.observability import ServingMetrics
from servewell.serving.deployment import Deployment
from servewell.serving.pool import ModelPool
from servewell.serving.reply import Reply

Running = Callable[[], RunningServer]
"""The started server (raises NotReady before start-up)."""
Draining = Callable[[], bool]
"""Whether the server is shutting down (readiness false)."""


def build_api(running: Running, metrics: ServingMetrics, draining: Draining) -> FastAPI:
    api = FastAPI(
        title="servewell",
        version=_package_version(),
        description="Model inference: Open Inference Protocol (V2) and REST.",
    )
    _add_error_handlers(api)
    _add_health_routes(api, running, metrics, draining)
    _add_v2_routes(api, running, draining)
    _add_rest_routes(api, running)
    _add_feedback_route(api, running)
    add_repository_routes(api, running)
    add_job_routes(api, running)
    _answer_head_probes(api)
    _document_inference_routes(api)
    return api


#: Health paths that answer HEAD too (status only): load balancers often probe with it.
PROBE_PATHS = frozenset(("/health", "/v2/health/live", "/v2/health/ready"))


def _answer_head_probes(api: FastAPI) -> None:
    """The probe paths' GET endpoints, for HEAD as well (not documented twice)."""
    for route in list(api.routes):
        if isinstance(route, APIRoute) and route.path in PROBE_PATHS:
            api.add_api_route(
                route.path,
                route.endpoint,
                methods=["HEAD"],
                response_class=route.response_class,
                include_in_schema=False,
            )


def _add_health_routes(
    api: FastAPI, running: Running, metrics: ServingMetrics, draining: Draining
) -> None:
    @api.get("/health", response_class=PlainTextResponse, tags=["health"])
    async def health() -> PlainTextResponse:
        """One line: ready or not, and what is served."""
        text, ready = _health_line(running().pool, draining())
        return PlainTextResponse(text + "\n", status_code=200 if ready else 503)

    @api.get("/metrics", tags=["health"])
    async def exposition() -> Response:
        """Prometheus text exposition."""
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)


def _add_v2_routes(api: FastAPI, running: Running, draining: Draining) -> None:
    @api.get("/v2/health/live", tags=["v2"])
    async def live() -> dict[str, bool]:
        return {"live": True}

    @api.get("/v2/health/ready", tags=["v2"])
    async def ready() -> JSONResponse:
        is_ready = running().is_ready and not draining()
        return JSONResponse({"ready": is_ready}, status_code=200 if is_ready else 503)

    @api.get("/v2", tags=["v2"])
    async def server_metadata() -> dict[str, Any]:
        return {
            "name": "servewell",
            "version": _package_version(),
            "extensions": v2.EXTENSIONS,
        }

    @api.get("/v2/models/{name}", tags=["v2"])
    async def model_metadata(name: str) -> dict[str, Any]:
        pool = running().pool
        return v2.model_metadata(pool.get(name), pool.versions_of(name))

    @api.get("/v2/models/{name}/versions/{version}", tags=["v2"])
    async def version_metadata(name: str, version: str) -> dict[str, Any]:
        pool = running().pool
        deployment = pool.get(name, version_in_path(name, version))
        return v2.model_metadata(deployment, pool.versions_of(name))

    @api.get("/v2/models/{name}/ready", tags=["v2"])
    async def model_ready(name: str) -> JSONResponse:
        return _model_ready(running().pool.get(name))

    @api.get("/v2/models/{name}/versions/{version}/ready", tags=["v2"])
    async def version_ready(name: str, version: str) -> JSONResponse:
        return _model_ready(running().pool.get(name, version_in_path(name, version)))


def _add_rest_routes(api: FastAPI, running: Running) -> None:
    @api.get("/v1/models", tags=["rest"])
    async def list_models() -> dict[str, Any]:
        """Every model served, with its default version (``models``); the chat models
        also as OpenAI's model list (``object: list``, ``data``: one entry a version and
        one for the bare name)."""
        pool = running().pool
        models = []
        for name in pool.names():
            try:
                deployment = pool.get(name)
            except ServewellError as exc:
                models.append({"name": name, "ready": False, "error": exc.message})
                continue
            models.append(
                {
                    "name": name,
                    "version": deployment.number,
                    "versions": pool.versions_of(name),
                    "platform": deployment.platform,
                    "ready": True,
                }
            )
        return {"models": models, "object": "list", "data": chat_models(pool)}

    @api.get("/v1/models/{name}", tags=["rest"])
    async def model_status(name: str) -> dict[str, Any]:
        pool = running().pool
        failed = {v: why for (n, v), why in pool.failed_versions.items() if n == name}
        if not failed:
            pool.get(name)  # 404 for a model not served, 503 while loading
        deployments = [pool.get(name, v) for v in pool.versions_of(name)]
        return rest.model_status(deployments, True, failed)

    @api.get("/v1/models/{name}/versions/{version}", tags=["rest"])
    async def version_status(name: str, version: str) -> dict[str, Any]:
        deployment = running().pool.get(name, version_in_path(name, version))
        return rest.model_status([deployment], True)

    # ``:predict`` goes to the gateway before FastAPI; any other TF-Serving verb
    # (``:explain``, ``:classify``) is an unknown route, not a method the GET routes of
    # the same paths do not allow.
    @api.post("/v1/models/{segment}", include_in_schema=False)
    @api.post("/v1/models/{name}/versions/{segment}", include_in_schema=False)
    async def unknown_verb() -> None:
        raise HTTPException(404, "Not Found")


#: Feedback bodies above this are parsed on a worker thread: a 16 MiB batch of labels
#: took seconds of the event loop, and every request on the server waited.
_PARSE_ON_LOOP_BYTES = 64 * 1024


def _parsed_labels(body: bytes, depth: int) -> list[tuple[str, Label]]:
    return labels_from_json(load_json(body, depth))


def _add_feedback_route(api: FastAPI, running: Running) -> None:
    @api.post("/v1/models/{name}/feedback", tags=["monitoring"])
    async def feedback(name: str, request: Request) -> dict[str, Any]:
        """Ground-truth labels for logged predictions, joined by request id:
        ``[{"request_id": "...", "label": ...}, ...]`` (the ``feedback`` scope). A second
        label for an id replaces the first; ids never logged are counted and the first
        100 named in the answer: ``{"accepted", "unknown", "unknown_count"}``."""
        server = running()
        settings = server.settings
        check_name(name)
        check_json(request.headers.get("content-type", "").encode("latin-1") or None)
        body = await read_body(request.scope, request.receive, settings.server.max_body_bytes)
        depth = settings.validation.max_json_depth
        if len(body) > _PARSE_ON_LOOP_BYTES:  # parsed and checked off the loop: serving goes on
            labels = await asyncio.to_thread(_parsed_labels, body, depth)
        else:
            labels = _parsed_labels(body, depth)
        # A misspelt name is a 404, not a batch of ids it never logged.
        await asyncio.to_thread(server.services.registry.list_versions, name)
        result = await asyncio.to_thread(server.predictions.store.label, name, labels)
        if server.alerts is not None:
            server.alerts.nudge()  # rules on this model's quality: evaluate them soon
        return result.to_dict()


def _document_inference_routes(api: FastAPI) -> None:
    """Add the inference routes (:data:`~servewell.http.targets.INFER_ROUTES`) to the
    OpenAPI schema FastAPI builds from its own routes."""

    def openapi() -> dict[str, Any]:
        if api.openapi_schema is None:
            schema = get_openapi(
                title=api.title,
                version=api.version,
                description=api.description,
                routes=api.routes,
            )
            for route in INFER_ROUTES:
                default, pinned = route.templates()
                schema["paths"][default] = {"post": _operation(route, pinned=False)}
                schema["paths"][pinned] = {"post": _operation(route, pinned=True)}
            schema["paths"][CHAT_PATH] = {"post": CHAT_OPERATION}
            api.openapi_schema = schema
        return api.openapi_schema

    api.openapi = openapi  # type: ignore[method-assign]


def _operation(route: InferRoute, *, pinned: bool) -> dict[str, Any]:
    """An inference route's OpenAPI operation."""
    names = ("name", "version") if pinned else ("name",)
    return {
        "tags": [route.tag],
        "summary": route.summary + (", from one version" if pinned else ""),
        "operationId": f"{route.protocol}_infer" + ("_version" if pinned else ""),
        "parameters": [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in names
        ],
        "requestBody": route.request_body,
        "responses": {"200": {"description": "The model's answer."}},
    }


def _response(reply: Reply) -> Response:
    headers = {key.decode(): value.decode() for key, value in reply.headers}
    return Response(
        reply.body, reply.status, headers=headers, media_type=reply.content_type.decode()
    )


def _add_error_handlers(api: FastAPI) -> None:
    async def servewell_error(request: Request, exc: Exception) -> Response:
        return _response(to_reply(exc, v2=request.url.path.startswith("/v2")))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        body = _error_body(request, str(exc.detail), _HTTP_CODES.get(exc.status_code, "error"))
        return JSONResponse(body, exc.status_code, headers=exc.headers)

    async def validation_error(request: Request, exc: Exception) -> Response:
        return JSONResponse(_error_body(request, f"invalid request: {exc}", "invalid_input"), 400)

    api.add_exception_handler(ServewellError, servewell_error)
    api.add_exception_handler(HTTPException, http_error)
    api.add_exception_handler(RequestValidationError, validation_error)


#: The ``code`` of FastAPI's own answers (unknown route, method), as servewell's errors
#: carry one.
_HTTP_CODES = {404: "not_found", 405: "method_not_allowed"}


def _error_body(request: Request, message: str, code: str) -> dict[str, str]:
    """V2 routes keep the protocol's ``{"error"}``; the others add ``code``."""
    if request.url.path.startswith("/v2"):
        return {"error": message}
    return {"error": message, "code": code}


def _model_ready(deployment: Deployment) -> JSONResponse:
    """200 when the version takes requests; 503 while its process restarts."""
    ready = deployment.is_up
    body = {"name": deployment.name, "version": str(deployment.number), "ready": ready}
    return JSONResponse(body, status_code=200 if ready else 503)


def _health_line(pool: ModelPool, draining: bool) -> tuple[str, bool]:
    if draining:
        return "not ready: shutting down", False
    if pool.is_loading:
        return "not ready: loading models", False
    if pool.failures:
        failed = "; ".join(f"{ref}: {why}" for ref, why in pool.failures.items())
        return f"not ready: failed to load {failed}", False
    if restarting := pool.restarting():
        down = ", ".join(f"{d.name}@{d.number}" for d in restarting)
        return f"not ready: restarting {down}", False
    served = ", ".join(f"{d.name}@{d.number}" for d in pool.deployments()) or "no models"
    return f"ready: serving {served}", True


def _package_version() -> str:
    try:
        return version("servewell")
    except PackageNotFoundError:
        return "0+unknown"
