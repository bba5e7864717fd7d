"""The one place where concrete adapters are chosen and wired together."""

from __future__ import annotations

from dataclasses import dataclass

from servewell.registry import LocalArtifactStore, SqlRegistry
from servewell.settings import Settings


@dataclass(frozen=True)
class Services:
    """Everything long-lived a command, server or worker needs, built from the settings."""

    settings: Settings
    registry: SqlRegistry
    artifacts: LocalArtifactStore

    def close(self) -> None:
        self.registry.close()


def build_services(settings: Settings) -> Services:
    """Open the registry (migrating it if needed) and the artifact store."""
    registry = SqlRegistry(settings.resolved_database_url)
    registry.open()
    artifacts = LocalArtifactStore(settings.resolved_artifacts_dir)
    return Services(settings=settings, registry=registry, artifacts=artifacts)
