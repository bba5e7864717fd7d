"""FastAPI routes: health, metadata, metrics, and the inference routes' documentation.

Inference requests normally take the app's fast path and never reach FastAPI; their
routes are declared here too so ``/openapi.json`` and ``/docs`` show them, and they work
the same if this FastAPI app is mounted on its own.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.exceptions import HTTPException

from servewell.core.ref import parse_version
from servewell.errors import ServewellError
from servewell.http import rest, v2
from servewell.http.problems import to_reply
from servewell.http.targets import InferTarget
from servewell.http.wire import Reply

if TYPE_CHECKING:
    from servewell.http.app import ServewellApp

V2_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"type": "object", "required": ["inputs"]},
                "example": {
                    "id": "42",
                    "inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 2],
                                "data": [0.5, 1.5]}],
                },
            },
            "application/octet-stream": {
                "schema": {"type": "string", "format": "binary"},
            },
        },
    }
}  # fmt: skip
REST_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"type": "object"},
                "examples": {
                    "rows": {"value": {"instances": [[0.5, 1.5], [2.0, 0.1]]}},
                    "objects": {"value": {"instances": [{"a": 0.5, "b": 1.5}]}},
                    "columns": {"value": {"inputs": {"a": [0.5, 2.0], "b": [1.5, 0.1]}}},
                },
            }
        },
    }
}


def build_api(app: ServewellApp) -> FastAPI:
    api = FastAPI(
        title="servewell",
        version=_package_version(),
        description="Model inference: Open Inference Protocol (V2) and REST.",
    )
    _add_error_handlers(api)
    _add_health_routes(api, app)
    _add_v2_routes(api, app)
    _add_rest_routes(api, app)
    return api


def _add_health_routes(api: FastAPI, app: ServewellApp) -> None:
    @api.get("/health", response_class=PlainTextResponse, tags=["health"])
    async def health() -> PlainTextResponse:
        """One line: ready or not, and what is served."""
        text, ready = _health_line(app)
        return PlainTextResponse(text + "\n", status_code=200 if ready else 503)

    @api.get("/metrics", tags=["health"])
    async def metrics() -> Response:
        """Prometheus text exposition."""
        body, content_type = app.metrics.render()
        return Response(body, media_type=content_type)


def _add_v2_routes(api: FastAPI, app: ServewellApp) -> None:
    @api.get("/v2/health/live", tags=["v2"])
    async def live() -> dict[str, bool]:
        return {"live": True}

    @api.get("/v2/health/ready", tags=["v2"])
    async def ready() -> JSONResponse:
        return JSONResponse({"ready": app.is_ready}, status_code=200 if app.is_ready else 503)

    @api.get("/v2", tags=["v2"])
    async def server_metadata() -> dict[str, Any]:
        return {
            "name": "servewell",
            "version": _package_version(),
            "extensions": v2.EXTENSIONS,
        }

    @api.get("/v2/models/{name}", tags=["v2"])
    async def model_metadata(name: str) -> dict[str, Any]:
        pool = app.require_pool()
        return v2.model_metadata(pool.get(name), pool.versions_of(name))

    @api.get("/v2/models/{name}/versions/{version}", tags=["v2"])
    async def version_metadata(name: str, version: str) -> dict[str, Any]:
        pool = app.require_pool()
        return v2.model_metadata(pool.get(name, _number(name, version)), pool.versions_of(name))

    @api.get("/v2/models/{name}/ready", tags=["v2"])
    async def model_ready(name: str) -> dict[str, Any]:
        deployment = app.require_pool().get(name)
        return {"name": deployment.name, "version": str(deployment.number), "ready": True}

    @api.get("/v2/models/{name}/versions/{version}/ready", tags=["v2"])
    async def version_ready(name: str, version: str) -> dict[str, Any]:
        deployment = app.require_pool().get(name, _number(name, version))
        return {"name": deployment.name, "version": str(deployment.number), "ready": True}

    @api.post("/v2/models/{name}/infer", tags=["v2"], openapi_extra=V2_BODY)
    async def infer(name: str, request: Request) -> Response:
        """Inference, Open Inference Protocol (JSON or Triton's binary tensor data)."""
        return await _infer(app, request, _target("v2", name, None))

    @api.post("/v2/models/{name}/versions/{version}/infer", tags=["v2"], openapi_extra=V2_BODY)
    async def infer_version(name: str, version: str, request: Request) -> Response:
        """Inference on one version, Open Inference Protocol."""
        return await _infer(app, request, _target("v2", name, version))


def _add_rest_routes(api: FastAPI, app: ServewellApp) -> None:
    @api.get("/v1/models", tags=["rest"])
    async def list_models() -> dict[str, Any]:
        """Every model served, with its default version."""
        pool = app.require_pool()
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
        return {"models": models}

    @api.get("/v1/models/{name}", tags=["rest"])
    async def model_status(name: str) -> dict[str, Any]:
        pool = app.require_pool()
        pool.get(name)
        return rest.model_status([pool.get(name, v) for v in pool.versions_of(name)], True)

    @api.get("/v1/models/{name}/versions/{version}", tags=["rest"])
    async def version_status(name: str, version: str) -> dict[str, Any]:
        return rest.model_status([app.require_pool().get(name, _number(name, version))], True)

    # TF-Serving's ":predict" cannot be a path parameter's suffix in Starlette's router;
    # the documented route matches the whole last segment and checks it.
    @api.post("/v1/models/{name_predict}", tags=["rest"], openapi_extra=REST_BODY)
    async def predict(name_predict: str, request: Request) -> Response:
        """Predictions for rows (``instances``) or columns (``inputs``):
        ``POST /v1/models/{name}:predict``."""
        return await _infer(app, request, _target("rest", _predict_name(name_predict), None))

    @api.post(
        "/v1/models/{name}/versions/{version_predict}", tags=["rest"], openapi_extra=REST_BODY
    )
    async def predict_version(name: str, version_predict: str, request: Request) -> Response:
        """Predictions from one version: ``POST /v1/models/{name}/versions/{v}:predict``."""
        return await _infer(app, request, _target("rest", name, _predict_name(version_predict)))


async def _infer(app: ServewellApp, request: Request, target: InferTarget) -> Response:
    body = await request.body()
    try:
        reply = await app.handle_infer(
            target,
            body,
            request.headers.get("content-type", "").encode() or None,
            (request.headers.get(v2.HEADER_LENGTH.decode()) or "").encode() or None,
        )
    except Exception as exc:
        reply = to_reply(exc, v2=target.protocol == "v2")
    return _response(reply)


def _target(protocol: str, name: str, version: str | None) -> InferTarget:
    return InferTarget(protocol, name, version)


def _predict_name(segment: str) -> str:
    name, sep, _ = segment.rpartition(":predict")
    if not sep or not name:
        raise HTTPException(404, "Not Found")
    return name


def _number(name: str, version: str) -> int:
    number = parse_version(version)
    if number is None:
        from servewell.errors import NotFound

        raise NotFound(f"model '{name}' has no version '{version}'", model=name)
    return number


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
        return JSONResponse({"error": str(exc.detail)}, exc.status_code, headers=exc.headers)

    async def validation_error(request: Request, exc: Exception) -> Response:
        return JSONResponse({"error": f"invalid request: {exc}"}, 400)

    api.add_exception_handler(ServewellError, servewell_error)
    api.add_exception_handler(HTTPException, http_error)
    api.add_exception_handler(RequestValidationError, validation_error)


def _health_line(app: ServewellApp) -> tuple[str, bool]:
    pool = app.pool
    if pool is None or pool.is_loading:
        return "not ready: loading models", False
    if pool.failures:
        failed = "; ".join(f"{ref}: {why}" for ref, why in pool.failures.items())
        return f"not ready: failed to load {failed}", False
    served = ", ".join(f"{d.name}@{d.number}" for d in pool.deployments()) or "no models"
    return f"ready: serving {served}", True


def _package_version() -> str:
    try:
        return version("servewell")
    except PackageNotFoundError:
        return "0+unknown"
