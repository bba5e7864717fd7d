"""What the Models pages show of the registry, as plain values for the templates: read
through the registry's own functions (the CLI's ``models``, ``versions`` and ``alias
history`` read the same), nothing computed that the registry does not hold."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from servewell.core.traffic import TrafficPolicy
from servewell.http.dashboard.artifacts import documents
from servewell.registry import ModelVersion
from servewell.registry.records import ORIGINAL, AliasMove
from servewell.registry.sql import SqlRegistry

#: Metrics shown first (in this order) when a version has them; latency in milliseconds.
HEADLINE_METRICS = (
    "accuracy",
    "balanced_accuracy",
    "macro_f1",
    "roc_auc",
    "r2",
    "mae",
    "rmse",
    "p50_ms",
    "p99_ms",
    "throughput_rows_s",
    "label_agreement",
)


@dataclass(frozen=True, slots=True)
class VersionView:
    number: int
    format: str
    formats: list[str]
    """Every model file's role and format: ``original: sklearn``, ``onnx: onnx``."""
    size_bytes: int
    serving_size_bytes: int | None
    """The ONNX conversion's size, when there is one (what a server loads)."""
    memory_bytes: int | None
    metrics: dict[str, Any]
    """Scalar metrics only, headline ones first."""
    aliases: tuple[str, ...]
    parent: str | None
    created_at: datetime
    documents: list[dict[str, str]]
    description: str


def version_view(version: ModelVersion) -> VersionView:
    files = [a for a in version.artifacts if a.role in (ORIGINAL, "onnx")]
    onnx = next((a for a in files if a.role == "onnx"), None)
    return VersionView(
        number=version.version,
        format=version.format,
        formats=[f"{artifact.role}: {artifact.format}" for artifact in files],
        size_bytes=version.size_bytes,
        serving_size_bytes=onnx.size_bytes if onnx is not None else None,
        memory_bytes=version.memory_bytes,
        metrics=scalar_metrics(version.metrics),
        aliases=version.aliases,
        parent=str(version.parent) if version.parent is not None else None,
        created_at=version.created_at,
        documents=documents(version),
        description=version.tags.get("description", ""),
    )


def scalar_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    """Numbers and short text, headline metrics first; nested reports left out."""
    scalars = {
        name: value
        for name, value in metrics.items()
        if isinstance(value, int | float | str | bool) and len(str(value)) <= 40
    }
    first = {name: scalars.pop(name) for name in HEADLINE_METRICS if name in scalars}
    return first | dict(sorted(scalars.items()))


@dataclass(frozen=True, slots=True)
class ModelOverview:
    name: str
    aliases: dict[str, int]
    versions: list[VersionView]
    updated_at: datetime


def overview(registry: SqlRegistry) -> list[ModelOverview]:
    """Every registered model with all its versions (newest first)."""
    return [
        ModelOverview(
            name=summary.name,
            aliases=summary.aliases,
            versions=[version_view(v) for v in reversed(registry.list_versions(summary.name))],
            updated_at=summary.updated_at,
        )
        for summary in registry.list_models()
    ]


@dataclass(frozen=True, slots=True)
class AliasView:
    alias: str
    version: int
    previous: int | None
    """Where a rollback would move it (None: nowhere)."""
    moves: list[AliasMove]
    """Newest first."""


def alias_views(registry: SqlRegistry, name: str, aliases: dict[str, int]) -> list[AliasView]:
    """Each alias of ``name``: where it points, its history, where a rollback goes."""
    history = registry.alias_history(name)
    views = []
    for alias, version in sorted(aliases.items()):
        moves = [move for move in reversed(history) if move.alias == alias]
        previous = moves[0].from_version if moves else None
        views.append(AliasView(alias, version, previous, moves))
    return views


def arm_rows(policy: TrafficPolicy | None, aliases: dict[str, int]) -> list[dict[str, Any]]:
    """A policy's arms with their shares in percent and the version each names now (an
    alias as the registry resolves it; None for an alias that points nowhere)."""
    if policy is None:
        return []
    return [
        {
            "target": arm.target,
            "version": arm.version if arm.alias is None else aliases.get(arm.alias),
            "weight": arm.weight,
            "share_percent": policy.share(arm) * 100,
        }
        for arm in policy.arms
    ]
