"""From a registered version to a loaded runtime, with its bytes checked on the way."""

from __future__ import annotations

import logging

from servewell.registry import ONNX, ORIGINAL, ModelVersion, RegistryAccess
from servewell.runtime import Runtime, create_runtime

logger = logging.getLogger(__name__)


def serving_artifact_role(version: ModelVersion, prefer_onnx: bool) -> str:
    """Which of a version's artifacts runs it: its ONNX conversion when it has one."""
    return ONNX if prefer_onnx and version.has_artifact(ONNX) else ORIGINAL


def open_runtime(access: RegistryAccess, version: ModelVersion) -> Runtime:
    """A loaded (not yet warmed up) runtime for ``version``.

    The artifact's sha256 is verified first: bytes changed since registration raise
    ArtifactTampered and are never loaded.
    """
    settings = access.settings.runtime
    artifact = version.artifact(serving_artifact_role(version, settings.prefer_onnx))
    path = access.artifacts.fetch(artifact.uri, artifact.sha256)
    runtime = create_runtime(artifact.format, path, settings, version.signature)
    runtime.load()
    logger.info(
        "loaded %s@%d (%s, %d bytes)",
        version.name,
        version.version,
        artifact.format,
        artifact.size_bytes,
    )
    return runtime
