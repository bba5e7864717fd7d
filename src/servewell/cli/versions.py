"""Rendering registry records: JSON dicts for scripts, Rich tables for people."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Group
from rich.table import Table

from servewell.core.figure import format_figure

if TYPE_CHECKING:
    from servewell.registry import ModelSummary, ModelVersion


def version_to_dict(version: ModelVersion) -> dict[str, Any]:
    return {
        "name": version.name,
        "version": version.version,
        "format": version.format,
        "artifact_uri": version.artifact_uri,
        "sha256": version.sha256,
        "size_bytes": version.size_bytes,
        "aliases": list(version.aliases),
        "parent": str(version.parent) if version.parent else None,
        "created_at": version.created_at.isoformat(),
        "signature": version.signature.to_dict(),
        "metrics": version.metrics,
        "params": version.params,
        "tags": version.tags,
        "artifacts": [
            {
                "role": a.role,
                "format": a.format,
                "uri": a.uri,
                "sha256": a.sha256,
                "size_bytes": a.size_bytes,
            }
            for a in version.artifacts
        ],
    }


def summary_to_dict(summary: ModelSummary) -> dict[str, Any]:
    return {
        "name": summary.name,
        "latest_version": summary.latest_version,
        "versions": summary.version_count,
        "aliases": summary.aliases,
        "format": summary.latest_format,
        "updated_at": summary.updated_at.isoformat(),
    }


def models_table(summaries: list[ModelSummary]) -> Table:
    table = Table(title="Registered models", title_justify="left")
    table.add_column("model", style="bold")
    table.add_column("latest", justify="right")
    table.add_column("versions", justify="right")
    table.add_column("aliases")
    table.add_column("format")
    table.add_column("updated (UTC)")
    for s in summaries:
        aliases = ", ".join(f"{alias}→{version}" for alias, version in s.aliases.items())
        table.add_row(
            s.name,
            str(s.latest_version),
            str(s.version_count),
            aliases or "-",
            s.latest_format,
            s.updated_at.strftime("%Y-%m-%d %H:%M"),
        )
    return table


def versions_table(versions: list[ModelVersion]) -> Table:
    table = Table(title=f"Versions of {versions[0].name}", title_justify="left")
    for column in ("version", "format", "aliases", "parent", "size", "accuracy", "created (UTC)"):
        table.add_column(column, justify="right" if column in ("version", "size") else "left")
    for v in versions:
        accuracy = v.metrics.get("accuracy")
        table.add_row(
            str(v.version),
            v.format + (" +onnx" if v.has_artifact("onnx") else ""),
            ", ".join(v.aliases) or "-",
            str(v.parent) if v.parent else "-",
            format_size(v.size_bytes),
            f"{accuracy:.4f}" if isinstance(accuracy, float) else "-",
            v.created_at.strftime("%Y-%m-%d %H:%M"),
        )
    return table


def version_details(version: ModelVersion, lineage: list[ModelVersion]) -> Group:
    about = Table.grid(padding=(0, 2))
    about.add_column(style="bold")
    about.add_column()
    about.add_row("model", f"{version.name}@{version.version}")
    about.add_row("aliases", ", ".join(version.aliases) or "-")
    about.add_row("format", version.format)
    about.add_row("created", version.created_at.isoformat(timespec="seconds"))
    about.add_row("sha256", version.sha256)
    about.add_row("lineage", " ← ".join(f"{v.name}@{v.version}" for v in lineage) or "-")
    for key, value in version.tags.items():
        about.add_row(f"tag {key}", value)
    parts: list[Any] = [about, _signature_table(version)]
    if version.signature.class_labels is not None:
        labels = ", ".join(map(str, version.signature.class_labels))
        parts.append(f"[bold]class labels[/]: {labels}")
    if version.signature.feature_names:
        parts.append(f"[bold]features[/]: {', '.join(version.signature.feature_names)}")
    parts.append(_mapping_table("Metrics", version.metrics))
    if version.params:
        parts.append(_mapping_table("Params", version.params))
    parts.append(_artifacts_table(version))
    return Group(*parts)


def _signature_table(version: ModelVersion) -> Table:
    table = Table(title="Signature", title_justify="left")
    for column in ("", "name", "datatype", "shape", "accepts"):
        table.add_column(column)
    for kind, specs in (("input", version.signature.inputs), ("output", version.signature.outputs)):
        for spec in specs:
            shape = "[" + ", ".join("-1" if d == -1 else str(d) for d in spec.shape) + "]"
            accepts = [
                word for word, on in (("ISO 8601", spec.datetime), ("null", spec.nullable)) if on
            ]
            table.add_row(kind, spec.name, spec.datatype, shape, ", ".join(accepts))
    return table


def _mapping_table(title: str, values: dict[str, Any]) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("name")
    table.add_column("value", justify="right")
    for key, value in _flatten(values):
        table.add_row(key, format_figure(value) if isinstance(value, float) else str(value))
    if not values:
        table.add_row("-", "-")
    return table


def _flatten(values: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """Nested figures (an optimization's before/after) as dotted rows."""
    rows: list[tuple[str, Any]] = []
    for key, value in values.items():
        if isinstance(value, dict):
            rows.extend(_flatten(value, f"{prefix}{key}."))
        else:
            rows.append((f"{prefix}{key}", value))
    return rows


def _artifacts_table(version: ModelVersion) -> Table:
    table = Table(title="Artifacts", title_justify="left")
    for column in ("role", "format", "size", "sha256"):
        table.add_column(column, justify="right" if column == "size" else "left")
    for a in version.artifacts:
        table.add_row(a.role, a.format, format_size(a.size_bytes), a.sha256[:16] + "…")
    return table


def format_size(size_bytes: int) -> str:
    size = float(size_bytes)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size_bytes} B"
