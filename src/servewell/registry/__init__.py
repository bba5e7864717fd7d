"""The model registry: versions, aliases and content-addressed artifacts.

Names are imported on first use (``servewell.exports``): the record types, the sweep
and the API-key store are reachable without SQLAlchemy until a registry is opened.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from servewell.exports import lazy_exports

__all__ = [
    "ONNX",
    "ORIGINAL",
    "Artifact",
    "LocalArtifactStore",
    "ModelSummary",
    "ModelVersion",
    "NewVersion",
    "RegistryAccess",
    "SqlRegistry",
    "StoredArtifact",
]

_EXPORTS = {
    "ONNX": "servewell.registry.records",
    "ORIGINAL": "servewell.registry.records",
    "Artifact": "servewell.registry.records",
    "LocalArtifactStore": "servewell.registry.artifacts",
    "ModelSummary": "servewell.registry.records",
    "ModelVersion": "servewell.registry.records",
    "NewVersion": "servewell.registry.records",
    "RegistryAccess": "servewell.registry.access",
    "SqlRegistry": "servewell.registry.sql",
    "StoredArtifact": "servewell.registry.records",
}

if TYPE_CHECKING:
    from servewell.registry.access import RegistryAccess
    from servewell.registry.artifacts import LocalArtifactStore
    from servewell.registry.records import (
        ONNX,
        ORIGINAL,
        Artifact,
        ModelSummary,
        ModelVersion,
        NewVersion,
        StoredArtifact,
    )
    from servewell.registry.sql import SqlRegistry
else:  # hidden from the type checker, for which a misspelt name must stay an error
    __getattr__ = lazy_exports(__name__, _EXPORTS)
