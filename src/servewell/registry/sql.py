"""The model registry on SQL: SQLite by default, PostgreSQL for many replicas."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, Row, func, select
from sqlalchemy.exc import IntegrityError

from servewell.core.ref import DEFAULT_ALIAS, MAX_VERSION, ModelRef, check_alias, check_name
from servewell.core.signature import Signature
from servewell.errors import (
    AliasNotFound,
    Conflict,
    ModelNotFound,
    VersionNotFound,
)
from servewell.registry import schema
from servewell.registry.database import create_registry_engine, map_sql_errors
from servewell.registry.migrate import upgrade_to_head
from servewell.registry.records import (
    ORIGINAL,
    Artifact,
    ModelSummary,
    ModelVersion,
    NewVersion,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")

_MAX_ATTEMPTS = 20


class SqlRegistry:
    """Models, their numbered versions, artifacts and aliases, in one SQL database."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine: Engine | None = None

    # --- lifecycle --------------------------------------------------------------------------

    def open(self) -> None:
        """Connect and bring the schema up to date."""
        with map_sql_errors(self.url):
            engine = create_registry_engine(self.url)
            upgrade_to_head(engine)
        self._engine = engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            raise RuntimeError("SqlRegistry.open() was not called")
        return self._engine

    # --- writes -----------------------------------------------------------------------------

    def register(self, new: NewVersion) -> ModelVersion:
        """Add the next version of ``new.name`` (creating the model if needed), atomically."""
        check_name(new.name)
        if new.alias is not None:
            check_alias(new.alias)
        if not any(artifact.role == ORIGINAL for artifact in new.artifacts):
            raise ValueError("a new version needs an 'original' artifact")
        number = self._write(lambda conn: self._insert_version(conn, new))
        return self.get_version(new.name, number)

    def set_alias(self, name: str, alias: str, version: int) -> ModelVersion:
        """Point ``alias`` at ``version`` (moving it if it pointed elsewhere)."""
        check_alias(alias)

        def move(conn: Connection) -> None:
            model_id = self._model_id(conn, name)
            version_id = self._version_id(conn, model_id, name, version)
            self._upsert_alias(conn, model_id, alias, version_id)

        self._write(move)
        return self.get_version(name, version)

    def remove_alias(self, name: str, alias: str) -> None:
        def remove(conn: Connection) -> None:
            model_id = self._model_id(conn, name)
            deleted = conn.execute(
                schema.aliases.delete().where(
                    schema.aliases.c.model_id == model_id, schema.aliases.c.name == alias
                )
            )
            if deleted.rowcount == 0:
                raise AliasNotFound(name, alias)

        self._write(remove)

    # --- reads ------------------------------------------------------------------------------

    def resolve(self, ref: ModelRef) -> ModelVersion:
        """The version ``ref`` names; a bare name is its production alias, else its latest."""
        if ref.version is not None:
            return self.get_version(ref.name, ref.version)
        with self._read() as conn:
            model_id = self._model_id(conn, ref.name)
            alias = ref.alias or DEFAULT_ALIAS
            version_id = conn.scalar(
                select(schema.aliases.c.version_id).where(
                    schema.aliases.c.model_id == model_id, schema.aliases.c.name == alias
                )
            )
            if version_id is None:
                if ref.alias is not None:
                    raise AliasNotFound(ref.name, ref.alias)
                version_id = conn.scalar(
                    select(schema.model_versions.c.id)
                    .where(schema.model_versions.c.model_id == model_id)
                    .order_by(schema.model_versions.c.version.desc())
                    .limit(1)
                )
                if version_id is None:
                    raise ModelNotFound(ref.name)
            return self._load_versions(conn, [version_id])[0]

    def get_version(self, name: str, version: int) -> ModelVersion:
        with self._read() as conn:
            model_id = self._model_id(conn, name)
            version_id = self._version_id(conn, model_id, name, version)
            return self._load_versions(conn, [version_id])[0]

    def list_versions(self, name: str) -> list[ModelVersion]:
        with self._read() as conn:
            model_id = self._model_id(conn, name)
            ids = conn.scalars(
                select(schema.model_versions.c.id)
                .where(schema.model_versions.c.model_id == model_id)
                .order_by(schema.model_versions.c.version)
            ).all()
            return self._load_versions(conn, list(ids))

    def list_models(self) -> list[ModelSummary]:
        m, v, a = schema.models, schema.model_versions, schema.aliases
        with self._read() as conn:
            latest = (
                select(
                    v.c.model_id,
                    func.max(v.c.version).label("latest"),
                    func.count().label("version_count"),
                    func.max(v.c.created_at).label("updated"),
                )
                .group_by(v.c.model_id)
                .subquery()
            )
            rows = conn.execute(
                select(m.c.id, m.c.name, latest.c.latest, latest.c.version_count, latest.c.updated)
                .join(latest, latest.c.model_id == m.c.id)
                .order_by(m.c.name)
            ).all()
            alias_rows = conn.execute(
                select(a.c.model_id, a.c.name, v.c.version).join(v, v.c.id == a.c.version_id)
            ).all()
            format_rows = conn.execute(
                select(v.c.model_id, v.c.format).join(
                    latest,
                    (latest.c.model_id == v.c.model_id) & (latest.c.latest == v.c.version),
                )
            ).all()
        formats = {row.model_id: row.format for row in format_rows}
        aliases: dict[int, dict[str, int]] = {}
        for model_id, alias, version in alias_rows:
            aliases.setdefault(model_id, {})[alias] = version
        return [
            ModelSummary(
                name=row.name,
                latest_version=row.latest,
                version_count=row.version_count,
                aliases=dict(sorted(aliases.get(row.id, {}).items())),
                latest_format=formats.get(row.id, ""),
                updated_at=_aware(row.updated),
            )
            for row in rows
        ]

    def is_artifact_referenced(self, sha256: str) -> bool:
        """Whether any version still uses these bytes (so the file must stay)."""
        with self._read() as conn:
            return (
                conn.scalar(
                    select(func.count())
                    .select_from(schema.artifacts)
                    .where(schema.artifacts.c.sha256 == sha256)
                )
                or 0
            ) > 0

    def referenced_digests(self) -> set[str]:
        """The sha256 of every artifact any version uses."""
        with self._read() as conn:
            return set(conn.scalars(select(schema.artifacts.c.sha256).distinct()))

    # --- internals --------------------------------------------------------------------------

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with map_sql_errors(self.url), self.engine.begin() as conn:
            yield conn

    def _write(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` in a transaction, retrying when a concurrent writer won a race."""
        for attempt in range(1, _MAX_ATTEMPTS + 1):
            try:
                with map_sql_errors(self.url), self.engine.begin() as conn:
                    return work(conn)
            except IntegrityError:
                if attempt == _MAX_ATTEMPTS:
                    raise Conflict("the registry was changed concurrently; try again") from None
                time.sleep(random.uniform(0.005, 0.02) * attempt)
        raise AssertionError("unreachable")

    def _insert_version(self, conn: Connection, new: NewVersion) -> int:
        now = datetime.now(UTC)
        model_id = conn.scalar(select(schema.models.c.id).where(schema.models.c.name == new.name))
        if model_id is None:
            model_id = conn.scalar(
                schema.models.insert()
                .values(name=new.name, description=new.description, created_at=now)
                .returning(schema.models.c.id)
            )
        parent_id = None
        if new.parent is not None:
            parent_id = self._parent_id(conn, new.parent)
        latest = conn.scalar(
            select(func.max(schema.model_versions.c.version)).where(
                schema.model_versions.c.model_id == model_id
            )
        )
        number = (latest or 0) + 1
        original = next(a for a in new.artifacts if a.role == ORIGINAL)
        version_id = conn.scalar(
            schema.model_versions.insert()
            .returning(schema.model_versions.c.id)
            .values(
                model_id=model_id,
                version=number,
                format=new.format,
                artifact_uri=original.uri,
                sha256=original.sha256,
                size_bytes=original.size_bytes,
                signature=new.signature.to_dict(),
                metrics=new.metrics,
                params=new.params,
                tags=new.tags,
                parent_id=parent_id,
                created_at=now,
            )
        )
        conn.execute(
            schema.artifacts.insert(),
            [
                {
                    "version_id": version_id,
                    "role": a.role,
                    "format": a.format,
                    "uri": a.uri,
                    "sha256": a.sha256,
                    "size_bytes": a.size_bytes,
                }
                for a in new.artifacts
            ],
        )
        if new.alias is not None:
            self._upsert_alias(conn, model_id, new.alias, version_id)
        return number

    def _parent_id(self, conn: Connection, parent: ModelRef) -> int:
        if parent.version is None:
            raise ValueError("a parent must name a version number")
        return self._version_id(
            conn, self._model_id(conn, parent.name), parent.name, parent.version
        )

    def _upsert_alias(self, conn: Connection, model_id: int, alias: str, version_id: int) -> None:
        now = datetime.now(UTC)
        table = schema.aliases
        updated = conn.execute(
            table.update()
            .where(table.c.model_id == model_id, table.c.name == alias)
            .values(version_id=version_id, updated_at=now)
        )
        if updated.rowcount == 0:
            conn.execute(
                table.insert().values(
                    model_id=model_id, name=alias, version_id=version_id, updated_at=now
                )
            )

    @staticmethod
    def _model_id(conn: Connection, name: str) -> int:
        model_id = conn.scalar(select(schema.models.c.id).where(schema.models.c.name == name))
        if model_id is None:
            raise ModelNotFound(name)
        return int(model_id)

    @staticmethod
    def _version_id(conn: Connection, model_id: int, name: str, version: int) -> int:
        if not 1 <= version <= MAX_VERSION:  # the column could not hold it: no such version
            raise VersionNotFound(name, version)
        version_id = conn.scalar(
            select(schema.model_versions.c.id).where(
                schema.model_versions.c.model_id == model_id,
                schema.model_versions.c.version == version,
            )
        )
        if version_id is None:
            raise VersionNotFound(name, version)
        return int(version_id)

    @staticmethod
    def _load_versions(conn: Connection, version_ids: list[int]) -> list[ModelVersion]:
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
            _to_version(by_id[vid], artifacts.get(vid, []), aliases.get(vid, []))
            for vid in version_ids
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
        created_at=_aware(row.created_at),
        aliases=tuple(a.name for a in aliases),
    )


def _aware(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; every time servewell stores is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
