"""What outer layers need to reach registered models, as a structural type.

:class:`servewell.bootstrap.Services` satisfies it; functions in ``training/``, ``optimize/``,
``registration/`` and ``serving/`` take it, so they never import the bootstrap module above them.
"""

from __future__ import annotations

from typing import Protocol

from servewell.registry.artifacts import LocalArtifactStore
from servewell.registry.sql import SqlRegistry
from servewell.settings import Settings


class RegistryAccess(Protocol):
    @property
    def settings(self) -> Settings: ...

    @property
    def registry(self) -> SqlRegistry: ...

    @property
    def artifacts(self) -> LocalArtifactStore: ...
