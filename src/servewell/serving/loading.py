"""From a registered version to a loaded runtime, with its bytes checked on the way."""

from __future__ import annotations

import logging

from servewell.observability import JsonFormatter, configure_logging
from servewell.registry import ONNX, ORIGINAL, ModelVersion, RegistryAccess
from servewell.runtime import Runtime, create_runtime
from servewell.runtime.process import ProcessRuntime
from servewell.runtime.restart import RestartPolicy

logger = logging.getLogger(__name__)


def serving_artifact_role(version: ModelVersion, prefer_onnx: bool) -> str:
    """Which of a version's artifacts runs it: its ONNX conversion when it has one."""
    return ONNX if prefer_onnx and version.has_artifact(ONNX) else ORIGINAL


def open_runtime(access: RegistryAccess, version: ModelVersion) -> Runtime:
    """A loaded (not yet warmed up) runtime for ``version``.

    The artifact's sha256 is verified first: bytes changed since registration raise
    ArtifactTampered and are never loaded. With ``models.<name>.isolation: process`` the
    runtime runs in a child process (:class:`ProcessRuntime`).
    """
    settings = access.settings.runtime
    artifact = version.artifact(serving_artifact_role(version, settings.prefer_onnx))
    path = access.artifacts.fetch(artifact.uri, artifact.sha256)
    resilience = access.settings.model(version.name).resilience
    runtime: Runtime
    if resilience.isolation == "process":
        runtime = ProcessRuntime(
            artifact.format,
            path,
            settings,
            version.signature,
            model=version.name,
            version=version.version,
            policy=RestartPolicy(timeouts_to_kill=resilience.restart_after_timeouts),
            setup=configure_logging if _logs_json() else None,
        )
    else:
        runtime = create_runtime(artifact.format, path, settings, version.signature)
    runtime.load()
    logger.info(
        "loaded %s@%d (%s, %d bytes%s)",
        version.name,
        version.version,
        artifact.format,
        artifact.size_bytes,
        ", in a child process" if isinstance(runtime, ProcessRuntime) else "",
    )
    return runtime


def _logs_json() -> bool:
    """Whether this process writes JSON log lines (a server does; the CLI does not):
    then a model's child process does too."""
    return any(isinstance(h.formatter, JsonFormatter) for h in logging.getLogger().handlers)
