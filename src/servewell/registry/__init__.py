"""The model registry: versions, aliases and content-addressed artifacts."""

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
