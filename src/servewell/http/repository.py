"""The V2 model-repository extension (Triton's), for operators and Triton tooling:
``POST /v2/repository/index``, ``/v2/repository/models/{name}/load`` and ``/unload``
(the ``admin`` scope: ``http/guard.py``), so ``tritonclient``'s
``get_model_repository_index``, ``load_model`` and ``unload_model`` work unchanged.

The index lists every registered model: each version served (``READY``, or
``UNAVAILABLE`` while its process restarts), the models not served (``UNAVAILABLE``,
with why: not loaded, or its load error) and, while the server starts, the models it
is loading (``LOADING``). ``load`` serves a model by its default reference (the one
``--models`` gives, else its production alias or latest version), loaded and warmed up
before it answers; ``unload`` stops serving every version of it (requests then get 404)
and leaves the server ready: an operator's choice is not a failure. Both go through
``serving.promotion``, one change at a time with the alias moves the server follows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request

from servewell.core.ref import check_name
from servewell.http.running import RunningServer
from servewell.http.wire import load_json, read_body
from servewell.registry import ModelSummary
from servewell.serving.pool import ModelPool

READY, UNAVAILABLE, LOADING = "READY", "UNAVAILABLE", "LOADING"


def add_repository_routes(api: FastAPI, running: Callable[[], RunningServer]) -> None:
    @api.post("/v2/repository/index", tags=["v2"])
    async def repository_index(request: Request) -> list[dict[str, str]]:
        """Every registered model and the state of each version served;
        ``{"ready": true}`` lists only those that take requests."""
        server = running()
        body = await _small_json(request, server)
        only_ready = isinstance(body, dict) and body.get("ready") is True
        models = await asyncio.to_thread(server.services.registry.list_models)
        entries = index_of(server.pool, models)
        return [entry for entry in entries if entry["state"] == READY or not only_ready]

    @api.post("/v2/repository/models/{name}/load", tags=["v2"])
    async def load_model(name: str, request: Request) -> dict[str, Any]:
        """Serve the model (loaded, warmed up and started before this answers)."""
        server = running()
        check_name(name)
        await _small_json(request, server)  # Triton's config overrides are not taken
        deployment = await server.promoter.load(name)
        return {"name": deployment.name, "version": str(deployment.number)}

    @api.post("/v2/repository/models/{name}/unload", tags=["v2"])
    async def unload_model(name: str, request: Request) -> dict[str, Any]:
        """Stop serving every version of the model (404 for a model not served)."""
        server = running()
        check_name(name)
        await _small_json(request, server)
        await server.promoter.unload(name)
        return {"name": name}


def index_of(pool: ModelPool, registered: list[ModelSummary]) -> list[dict[str, str]]:
    """The repository index's entries, served versions first, then sorted by name."""
    entries: list[dict[str, str]] = []
    served = set()
    for deployment in sorted(pool.deployments(), key=lambda d: (d.name, d.number)):
        served.add(deployment.name)
        state = READY if deployment.is_up else UNAVAILABLE
        entry = {"name": deployment.name, "version": str(deployment.number), "state": state}
        entry["reason"] = "" if deployment.is_up else "its process is restarting"
        entries.append(entry)
    failed = {name: why for (name, _), why in pool.failed_versions.items()}
    failed |= {ref.split("@", 1)[0]: why for ref, why in pool.failures.items()}
    for name in sorted({summary.name for summary in registered} - served):
        loading = pool.is_loading and name in pool.names()
        reason = "" if loading else failed.get(name, "not loaded")
        state = LOADING if loading else UNAVAILABLE
        entries.append({"name": name, "state": state, "reason": reason})
    return entries


async def _small_json(request: Request, server: RunningServer) -> Any:
    """The request's JSON body, if any (tritonclient sends none to the index)."""
    settings = server.settings
    body = await read_body(request.scope, request.receive, settings.server.max_body_bytes)
    return load_json(body, settings.validation.max_json_depth) if body.strip() else None
