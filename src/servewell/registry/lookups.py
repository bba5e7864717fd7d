"""Reading the registry's rows inside a transaction: ids by name, versions as records.

Shared by the registry (``sql.py``), the alias history (``alias_moves.py``) and the
traffic policies (``traffic.py``), so a missing model or version reads the same
everywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import Connection, Row, func, select
from sqlalchemy.sql.elements import ColumnElement

from servewell.core.ref import MAX_VERSION, ModelRef
from servewell.core.signature import Signature
from servewell.errors import ModelNotFound, VersionNotFound
from servewell.registry import schema
from servewell.registry.database import as_utc
from servewell.registry.records import Artifact, ModelVersion


def model_id(conn: Connection, name: str) -> int:
    found = conn.scalar(select(schema.models.c.id).where(schema.models.c.name == name))
    if found is None:
        raise ModelNotFound(name)
    return int(found)


def version_id(conn: Connection, model: int, name: str, version: int) -> int:
    if not 1 <= version <= MAX_VERSION:  # the column could not hold it: no such version
        raise VersionNotFound(name, version)
    found = conn.scalar(
        select(schema.model_versions.c.id).where(
            schema.model_versions.c.model_id == model,
            schema.model_versions.c.version == version,
        )
    )
    if found is None:
        raise VersionNotFound(name, version)
    return int(found)


def alias_version(conn: Connection, model: int, alias: str) -> int | None:
    """The version number ``alias`` points at, or None when the model has no such alias."""
    a, v = schema.aliases, schema.model_versions
    found = conn.scalar(
        select(v.c.version)
        .join(a, a.c.version_id == v.c.id)
        .where(a.c.model_id == model, a.c.name == alias)
    )
    return None if found is None else int(found)


def next_revision(conn: Connection, column: ColumnElement[Any]) -> int:
    """One more than the highest ``column`` holds. Two PostgreSQL writers may both pick
    it: the column's unique constraint rejects one, and ``SqlRegistry.write`` retries."""
    return int(conn.scalar(select(func.coalesce(func.max(column), 0))) or 0) + 1


def load_versions(conn: Connection, version_ids: list[int]) -> list[ModelVersion]:
    if not version_ids:
        return []
    m, v, a, al = schema.models, schema.model_versions, schema.artifacts, schema.aliases
    parent = v.alias("parent")
    parent_model = m.alias("parent_model")
    rows = conn.execute(
        select(
            v,
            m.c.name.label("model_name"),
            parent.c.version.label("parent_version"),
            parent_model.c.name.label("parent_name"),
        )
        .join(m, m.c.id == v.c.model_id)
        .outerjoin(parent, parent.c.id == v.c.parent_id)
        .outerjoin(parent_model, parent_model.c.id == parent.c.model_id)
        .where(v.c.id.in_(version_ids))
    ).all()
    artifacts = _group(
        conn.execute(select(a).where(a.c.version_id.in_(version_ids)).order_by(a.c.id)).all(),
        lambda row: row.version_id,
    )
    aliases = _group(
        conn.execute(
            select(al.c.version_id, al.c.name)
            .where(al.c.version_id.in_(version_ids))
            .order_by(al.c.name)
        ).all(),
        lambda row: row.version_id,
    )
    by_id = {row.id: row for row in rows}
    return [
        _to_version(by_id[vid], artifacts.get(vid, []), aliases.get(vid, [])) for vid in version_ids
    ]


def _group(rows: Iterable[Any], key: Callable[[Any], int]) -> dict[int, list[Any]]:
    groups: dict[int, list[Any]] = {}
    for row in rows:
        groups.setdefault(key(row), []).append(row)
    return groups


def _to_version(row: Row[Any], artifacts: list[Row[Any]], aliases: list[Row[Any]]) -> ModelVersion:
    parent = (
        ModelRef(row.parent_name, version=row.parent_version)
        if row.parent_version is not None
        else None
    )
    return ModelVersion(
        name=row.model_name,
        version=row.version,
        format=row.format,
        signature=Signature.from_dict(row.signature),
        artifacts=tuple(
            Artifact(a.role, a.format, a.uri, a.sha256, a.size_bytes) for a in artifacts
        ),
        metrics=dict(row.metrics),
        params=dict(row.params),
        tags=dict(row.tags),
        parent=parent,
        created_at=as_utc(row.created_at),
        aliases=tuple(a.name for a in aliases),
        memory_bytes=row.memory_bytes,
    )
