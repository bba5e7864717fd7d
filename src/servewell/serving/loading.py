"""From a registered version to a loaded runtime (or, for a remote model, an async
backend), with its bytes checked on the way."""

from __future__ import annotations

import logging
from collections.abc import Callable

from servewell.core.remote_spec import RemoteSpec, read_remote_spec
from servewell.errors import InvalidArtifact
from servewell.observability import JsonFormatter, configure_logging
from servewell.registry import ONNX, ORIGINAL, ModelVersion, RegistryAccess
from servewell.runtime import Runtime, create_runtime
from servewell.runtime.factory import REMOTE
from servewell.runtime.process import ProcessRuntime
from servewell.runtime.restart import RestartPolicy
from servewell.serving.backend import AsyncBackend
from servewell.serving.openai_backend import OpenAIBackend
from servewell.serving.remote_v2 import RemoteV2Backend

logger = logging.getLogger(__name__)


def serving_artifact_role(version: ModelVersion, prefer_onnx: bool) -> str:
    """Which of a version's artifacts runs it: its ONNX conversion when it has one."""
    return ONNX if prefer_onnx and version.has_artifact(ONNX) else ORIGINAL


#: A remote spec's kind -> the backend that serves it: (spec, version) -> not loaded yet.
REMOTE_BACKENDS: dict[str, Callable[[RemoteSpec, ModelVersion], AsyncBackend]] = {
    "v2": lambda spec, version: RemoteV2Backend(
        spec, version.signature, version.name, version.version
    ),
    "openai": lambda spec, version: OpenAIBackend(
        spec, version.signature, version.name, version.version
    ),
}


def open_model(access: RegistryAccess, version: ModelVersion) -> Runtime | AsyncBackend:
    """What serves ``version``: a remote model's backend, else a local runtime (see
    :func:`open_runtime`); loaded, not yet started or warmed up."""
    if version.format == REMOTE:
        return open_remote(access, version)
    return open_runtime(access, version)


def open_remote(access: RegistryAccess, version: ModelVersion) -> AsyncBackend:
    """The backend of a remote model, from its stored spec (sha256 verified), loaded: its
    credential read from the environment (a variable unset fails the load)."""
    spec = stored_spec(access, version)
    make = REMOTE_BACKENDS.get(spec.kind)
    if make is None:
        raise InvalidArtifact(
            f"{version.name}@{version.version}: remote models of kind '{spec.kind}' "
            "are not served here"
        )
    backend = make(spec, version)
    backend.load()
    logger.info(
        "loaded %s@%d (remote %s: model '%s' at %s)",
        *(version.name, version.version, spec.kind, spec.model, spec.base_url),
    )
    return backend


def stored_spec(access: RegistryAccess, version: ModelVersion) -> RemoteSpec:
    """A remote model's stored spec (sha256 verified): its upstream, never a credential
    (only the name of the variable holding one)."""
    artifact = version.artifact(ORIGINAL)
    return read_remote_spec(access.artifacts.fetch(artifact.uri, artifact.sha256))


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
