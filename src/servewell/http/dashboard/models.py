"""The Models pages: every model at a glance, and one model in full (signature,
versions side by side, traffic policy, aliases with their history and a rollback).

The rollback button calls the registry's ``rollback``, the very function ``servewell
rollback`` calls; the move is recorded as made by ``key:<name>``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from servewell.core.ref import check_name
from servewell.http.dashboard.access import Admin, Viewer, running
from servewell.http.dashboard.lineage import layout
from servewell.http.dashboard.model_views import (
    alias_views,
    arm_rows,
    overview,
    version_view,
)
from servewell.http.dashboard.pages import NavItem, render
from servewell.http.guard import DASHBOARD_PREFIX
from servewell.registry import RegistryAccess
from servewell.runtime.factory import REMOTE
from servewell.serving.loading import stored_spec

router = APIRouter()
NAV = NavItem("Models", "/models", 10)


@router.get("/models")
async def models_page(request: Request, principal: Viewer) -> Response:
    """Every model: versions, aliases, formats, sizes, metrics, documents, lineage."""
    models = await asyncio.to_thread(overview, running(request).services.registry)
    graphs = {
        model.name: layout(
            model.name,
            {v.number: v.parent for v in model.versions},
            set(model.aliases.values()),
        )
        for model in models
    }
    return render(request, "models.html", principal, models=models, graphs=graphs)


@router.get("/api/models")
async def models_data(request: Request, _: Viewer) -> dict[str, Any]:
    """Every model's newest version, version count and aliases, as JSON."""
    summaries = await asyncio.to_thread(running(request).services.registry.list_models)
    return {
        "models": [
            {
                "name": summary.name,
                "latest_version": summary.latest_version,
                "version_count": summary.version_count,
                "aliases": summary.aliases,
            }
            for summary in summaries
        ]
    }


@router.get("/models/{name}")
async def model_page(
    request: Request, name: str, principal: Viewer, moved: str | None = None
) -> Response:
    """One model: signature, a remote model's upstream, versions side by side, traffic,
    aliases and their history."""
    check_name(name)
    server = running(request)
    context = await asyncio.to_thread(_model_context, server.services, name)
    policy = server.router.policies.policy(name)
    return render(
        request,
        "model.html",
        principal,
        policy=policy,
        arms=arm_rows(policy, context["alias_targets"]),
        moved=moved,
        **context,
    )


def _model_context(access: RegistryAccess, name: str) -> dict[str, Any]:
    registry = access.registry
    versions = registry.list_versions(name)  # ModelNotFound (404) for an unknown name
    views = [version_view(v) for v in reversed(versions)]
    aliases = {alias: v.version for v in versions for alias in v.aliases}
    metric_names: list[str] = []
    for view in views:
        metric_names.extend(m for m in view.metrics if m not in metric_names)
    return {
        "name": name,
        "signature": versions[-1].signature,
        "remotes": [
            (v.version, stored_spec(access, v)) for v in reversed(versions) if v.format == REMOTE
        ],
        "versions": views,
        "metric_names": metric_names,
        "aliases": alias_views(registry, name, aliases),
        "alias_targets": aliases,
        "graph": layout(name, {v.number: v.parent for v in views}, set(aliases.values())),
    }


@router.post("/models/{name}/aliases/{alias}/rollback")
async def rollback(request: Request, name: str, alias: str, principal: Admin) -> Response:
    """Move ``alias`` back to where it pointed before its last move (``servewell
    rollback``); back to the model's page, which says where it went."""
    check_name(name)
    registry = running(request).services.registry
    move = await asyncio.to_thread(registry.rollback, name, alias, by=principal.who)
    target = f"{DASHBOARD_PREFIX}/models/{name}?moved={alias}:{move.from_version}:{move.to_version}"
    return RedirectResponse(target, status_code=303)
