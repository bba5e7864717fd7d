"""A version's stored documents (the training report, the model card, ...), served to a
signed-in visitor: HTML in a sandbox (its own scripts and styles may run, it may not
reach the dashboard's origin or cookies), text as plain text. Model files themselves
are never served here."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response

from servewell.core.ref import version_in_path
from servewell.errors import NotFound
from servewell.http.dashboard.access import Viewer, running
from servewell.http.guard import DASHBOARD_PREFIX
from servewell.registry import ModelVersion

router = APIRouter()

#: The documents a version may carry, by the ending of their role, and how to serve them.
DOCUMENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".md": "text/plain; charset=utf-8",
    ".json": "application/json",
    ".csv": "text/plain; charset=utf-8",
}
#: A stored HTML report's policy: sandboxed (a unique origin: no cookies, no dashboard
#: API, no scripts), its own inline styles and images, nothing fetched from anywhere.
REPORT_CSP = "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def documents(version: ModelVersion) -> list[dict[str, str]]:
    """The documents of ``version`` the dashboard links to: role and URL."""
    return [
        {"role": artifact.role, "href": document_url(version, artifact.role)}
        for artifact in version.artifacts
        if _media_type(artifact.role) is not None
    ]


def document_url(version: ModelVersion, role: str) -> str:
    return f"{DASHBOARD_PREFIX}/models/{version.name}/versions/{version.version}/files/{role}"


@router.get("/models/{name}/versions/{number}/files/{role}")
async def document(request: Request, name: str, number: str, role: str, _: Viewer) -> Response:
    """A stored document of a version; 404 for a model file, an unknown role or a
    version number the registry cannot hold."""
    media_type = _media_type(role)
    services = running(request).services
    version_number = version_in_path(name, number)
    version = await asyncio.to_thread(services.registry.get_version, name, version_number)
    if media_type is None or not version.has_artifact(role):
        raise NotFound(f"{name}@{number} has no document '{role}'")
    artifact = version.artifact(role)
    path = await asyncio.to_thread(services.artifacts.fetch, artifact.uri, artifact.sha256)
    headers = {"content-security-policy": REPORT_CSP} if role.endswith(".html") else {}
    return FileResponse(path, media_type=media_type, headers=headers)  # streamed


def _media_type(role: str) -> str | None:
    for ending, media_type in DOCUMENT_TYPES.items():
        if role.endswith(ending):
            return media_type
    return None
