"""The model registry on SQL: SQLite by default, PostgreSQL for many replicas."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TypeVar

from sqlalchemy import Connection, Engine, delete, func, select
from sqlalchemy.exc import IntegrityError

from servewell.core.ref import DEFAULT_ALIAS, ModelRef, check_alias, check_name
from servewell.errors import (
    AliasNotFound,
    Conflict,
    ModelNotFound,
    NoPreviousVersion,
)
from servewell.registry import lookups, schema
from servewell.registry.alias_moves import history, last_move, move_alias
from servewell.registry.database import as_utc, create_registry_engine, map_sql_errors
from servewell.registry.migrate import upgrade_to_head
from servewell.registry.records import (
    ONNX,
    ORIGINAL,
    AliasMove,
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
        number = self.write(lambda conn: self._insert_version(conn, new))
        return self.get_version(new.name, number)

    def attach(self, name: str, version: int, artifact: Artifact) -> ModelVersion:
        """Keep ``artifact`` with an existing version, replacing the one of its role (a
        reference profile given later, by ``servewell profile``). What serves (the
        original and its ONNX conversion) is never replaced: a version stays what it was."""
        if artifact.role in (ORIGINAL, ONNX):
            raise ValueError(f"the '{artifact.role}' artifact of a version cannot be replaced")
        a = schema.artifacts

        def keep(conn: Connection) -> None:
            found = lookups.version_id(conn, lookups.model_id(conn, name), name, version)
            conn.execute(delete(a).where(a.c.version_id == found, a.c.role == artifact.role))
            conn.execute(a.insert().values(_artifact_row(found, artifact)))

        self.write(keep)
        return self.get_version(name, version)

    def set_alias(
        self, name: str, alias: str, version: int, *, by: str | None = None
    ) -> ModelVersion:
        """Point ``alias`` at ``version`` (moving it if it pointed elsewhere), recording
        the move and who made it (``by``) in the alias's history."""
        check_alias(alias)

        def move(conn: Connection) -> None:
            model = lookups.model_id(conn, name)
            move_alias(conn, name, model, alias, version, by)

        self.write(move)
        return self.get_version(name, version)

    def remove_alias(self, name: str, alias: str, *, by: str | None = None) -> None:
        def remove(conn: Connection) -> None:
            if move_alias(conn, name, lookups.model_id(conn, name), alias, None, by) is None:
                raise AliasNotFound(name, alias)

        self.write(remove)

    def rollback(
        self, name: str, alias: str = DEFAULT_ALIAS, *, by: str | None = None
    ) -> AliasMove:
        """Move ``alias`` back to the version it pointed at before its last move (again:
        back and forth, like ``cd -``); NoPreviousVersion when there is none."""

        def back(conn: Connection) -> AliasMove:
            model = lookups.model_id(conn, name)
            last = last_move(conn, name, model, alias)
            if last is None:
                raise AliasNotFound(name, alias)
            if last.from_version is None:
                raise NoPreviousVersion(name, alias, last.to_version)
            moved = move_alias(conn, name, model, alias, last.from_version, by)
            assert moved is not None  # the history ends where the alias points
            return moved

        return self.write(back)

    def record_memory(self, name: str, version: int, memory_bytes: int) -> None:
        """Store what ``version`` took in memory when it was loaded (``serving/budget.py``
        measures it at its first load; later loads reuse it)."""

        def store(conn: Connection) -> None:
            model = lookups.model_id(conn, name)
            conn.execute(
                schema.model_versions.update()
                .where(schema.model_versions.c.id == lookups.version_id(conn, model, name, version))
                .values(memory_bytes=memory_bytes)
            )

        self.write(store)

    def previous_version(self, name: str, alias: str = DEFAULT_ALIAS) -> int | None:
        """The version ``rollback`` would move ``alias`` to, or None."""
        with self.read() as conn:
            last = last_move(conn, name, lookups.model_id(conn, name), alias)
        return None if last is None else last.from_version

    def alias_history(self, name: str, alias: str | None = None) -> list[AliasMove]:
        """Every move of ``alias`` (or of all the model's aliases), oldest first."""
        with self.read() as conn:
            return history(conn, name, lookups.model_id(conn, name), alias)

    # --- reads ------------------------------------------------------------------------------

    def resolve(self, ref: ModelRef) -> ModelVersion:
        """The version ``ref`` names; a bare name is its production alias, else its latest."""
        if ref.version is not None:
            return self.get_version(ref.name, ref.version)
        with self.read() as conn:
            model_id = lookups.model_id(conn, ref.name)
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
            return lookups.load_versions(conn, [version_id])[0]

    def get_version(self, name: str, version: int) -> ModelVersion:
        with self.read() as conn:
            model_id = lookups.model_id(conn, name)
            version_id = lookups.version_id(conn, model_id, name, version)
            return lookups.load_versions(conn, [version_id])[0]

    def list_versions(self, name: str) -> list[ModelVersion]:
        with self.read() as conn:
            model_id = lookups.model_id(conn, name)
            ids = conn.scalars(
                select(schema.model_versions.c.id)
                .where(schema.model_versions.c.model_id == model_id)
                .order_by(schema.model_versions.c.version)
            ).all()
            return lookups.load_versions(conn, list(ids))

    def list_models(self) -> list[ModelSummary]:
        m, v, a = schema.models, schema.model_versions, schema.aliases
        with self.read() as conn:
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
                updated_at=as_utc(row.updated),
            )
            for row in rows
        ]

    def is_artifact_referenced(self, sha256: str) -> bool:
        """Whether any version still uses these bytes (so the file must stay)."""
        with self.read() as conn:
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
        with self.read() as conn:
            return set(conn.scalars(select(schema.artifacts.c.sha256).distinct()))

    # --- internals --------------------------------------------------------------------------

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with map_sql_errors(self.url), self.engine.begin() as conn:
            yield conn

    def write(self, work: Callable[[Connection], T]) -> T:
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
            schema.artifacts.insert(), [_artifact_row(version_id, a) for a in new.artifacts]
        )
        if new.alias is not None:
            move_alias(conn, new.name, model_id, new.alias, number, new.by)
        return number

    def _parent_id(self, conn: Connection, parent: ModelRef) -> int:
        if parent.version is None:
            raise ValueError("a parent must name a version number")
        return lookups.version_id(
            conn, lookups.model_id(conn, parent.name), parent.name, parent.version
        )


def _artifact_row(version_id: int, artifact: Artifact) -> dict[str, object]:
    """One row of ``artifacts``: a file of the version ``version_id``."""
    return {
        "version_id": version_id,
        "role": artifact.role,
        "format": artifact.format,
        "uri": artifact.uri,
        "sha256": artifact.sha256,
        "size_bytes": artifact.size_bytes,
    }
