"""What the registry hands out: plain, immutable records (no SQL, no sessions)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from servewell.core.ref import ModelRef
from servewell.core.signature import Signature

#: Role of the artifact the user registered.
ORIGINAL = "original"
#: Role of a version's ONNX conversion, served instead of the original when present.
ONNX = "onnx"


@dataclass(frozen=True, slots=True)
class StoredArtifact:
    """Bytes in the artifact store, addressed by their content."""

    uri: str
    sha256: str
    size_bytes: int


@dataclass(frozen=True, slots=True)
class Artifact:
    """One file of a version: the original model, its ONNX conversion, a report, ..."""

    role: str
    format: str
    uri: str
    sha256: str
    size_bytes: int

    @classmethod
    def of(cls, role: str, format: str, stored: StoredArtifact) -> Artifact:
        return cls(role, format, stored.uri, stored.sha256, stored.size_bytes)


@dataclass(frozen=True, slots=True)
class NewVersion:
    """Everything a caller gives to register a version (its number is the registry's)."""

    name: str
    format: str
    signature: Signature
    artifacts: tuple[Artifact, ...]
    metrics: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    parent: ModelRef | None = None
    alias: str | None = None
    description: str = ""
    by: str | None = None
    """Who registers it: the author of the ``alias`` move in the alias's history."""


@dataclass(frozen=True, slots=True)
class ModelVersion:
    """One immutable, numbered version of a model."""

    name: str
    version: int
    format: str
    signature: Signature
    artifacts: tuple[Artifact, ...]
    metrics: dict[str, Any]
    params: dict[str, Any]
    tags: dict[str, str]
    parent: ModelRef | None
    created_at: datetime
    aliases: tuple[str, ...] = ()
    memory_bytes: int | None = None
    """What the version took in memory when a server first loaded it (None: never
    measured; ``serving/budget.py``)."""

    @property
    def ref(self) -> ModelRef:
        return ModelRef(self.name, version=self.version)

    @property
    def original(self) -> Artifact:
        return self.artifact(ORIGINAL)

    @property
    def artifact_uri(self) -> str:
        return self.original.uri

    @property
    def sha256(self) -> str:
        return self.original.sha256

    @property
    def size_bytes(self) -> int:
        return self.original.size_bytes

    def artifact(self, role: str) -> Artifact:
        for artifact in self.artifacts:
            if artifact.role == role:
                return artifact
        raise KeyError(role)

    def has_artifact(self, role: str) -> bool:
        return any(artifact.role == role for artifact in self.artifacts)


@dataclass(frozen=True, slots=True)
class ModelSummary:
    """A model, its newest version and where its aliases point."""

    name: str
    latest_version: int
    version_count: int
    aliases: dict[str, int]
    latest_format: str
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class AliasMove:
    """One entry of an alias's history: where it pointed before and after, when, by whom."""

    name: str
    alias: str
    from_version: int | None
    """None: the alias was created by this move."""
    to_version: int | None
    """None: the alias was removed by this move."""
    revision: int
    """Rises with every alias move of any model (``TrafficStore.revision``)."""
    moved_at: datetime
    moved_by: str | None
    """``user:<name>`` from the CLI, ``key:<name>`` through the API; None when unknown."""
