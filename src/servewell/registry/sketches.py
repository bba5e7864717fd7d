"""Window sketches of the prediction log in the registry database.

Each server process's log (``serving/prediction_sketches.py``) keeps, per model,
version, arm and time bucket, a :class:`~servewell.stats.bucket.Bucket` of what it
logged there, and saves it after each flush under a writer id of its own (a replica
never writes another's row, so several merge without locks). A window is every row
whose bucket ends after its start, merged: O(buckets x bins), never a rescan of rows.

Once an hour, closed buckets shorter than an hour are compacted: merged per model,
version, arm and hour into one row, the short ones deleted in the same transaction
(a day is then 24 rows and the last hour's, not 1,440). Two compactions of the same
rows cannot both count them: the delete must remove every row the merge read, or the
transaction is rolled back.
"""

from __future__ import annotations

import secrets
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, insert, select
from sqlalchemy.dialects import postgresql, sqlite

from servewell.errors import Conflict
from servewell.registry import schema
from servewell.registry.database import is_postgres
from servewell.registry.sql import SqlRegistry
from servewell.stats.bucket import Bucket

#: The span closed buckets are compacted to.
COMPACT_S = 3600.0


def new_writer() -> str:
    """A row id no other writer (process, bucket, compaction) has."""
    return secrets.token_hex(16)


@dataclass(frozen=True, slots=True)
class SketchRow:
    """One writer's bucket of one model version and arm, ``[starts_at, ends_at)``."""

    writer: str
    model: str
    version: int
    arm: str | None
    starts_at: float
    ends_at: float
    bucket: Bucket


class SketchStore:
    """Save, read, compact and prune window sketches."""

    def __init__(self, registry: SqlRegistry) -> None:
        self.registry = registry

    def save(self, rows: Sequence[SketchRow]) -> None:
        """Insert each row, or replace its writer's earlier state of it, in one transaction."""
        if not rows:
            return
        with self.registry.read() as conn:
            dialect: Any = postgresql if is_postgres(conn.engine) else sqlite
            table = schema.prediction_sketches
            for row in rows:
                statement = dialect.insert(table).values(**_values(row))
                conn.execute(
                    statement.on_conflict_do_update(
                        index_elements=["writer"],
                        set_={
                            "logged": statement.excluded.logged,
                            "sketch": statement.excluded.sketch,
                            "ends_at": statement.excluded.ends_at,
                        },
                    )
                )

    def window(
        self, model: str, *, since: float | None = None, version: int | None = None
    ) -> list[SketchRow]:
        """``model``'s buckets (``version``'s alone when given) ending after ``since``,
        oldest first."""
        table = schema.prediction_sketches
        query = select(table).where(table.c.model == model)
        if since is not None:
            query = query.where(table.c.ends_at > since)
        if version is not None:
            query = query.where(table.c.version == version)
        with self.registry.read() as conn:
            found = _fetch(conn, query.order_by(table.c.starts_at, table.c.id))
        return [_to_row(row) for row in found]

    def starting(
        self, model: str, start: float, end: float, *, version: int | None = None
    ) -> list[tuple[int, SketchRow]]:
        """``model``'s buckets (``version``'s alone when given) starting in ``[start,
        end)``, each with its row id (what :meth:`replace` takes)."""
        table = schema.prediction_sketches
        query = select(table).where(
            table.c.model == model, table.c.starts_at >= start, table.c.starts_at < end
        )
        if version is not None:
            query = query.where(table.c.version == version)
        with self.registry.read() as conn:
            found = _fetch(conn, query.order_by(table.c.starts_at, table.c.id))
        return [(row.id, _to_row(row)) for row in found]

    def replace(self, ids: Sequence[int], rows: Sequence[SketchRow]) -> None:
        """Delete the rows ``ids`` and insert ``rows``, in one transaction; Conflict (and
        nothing changed) when one of them went meanwhile (a compaction merged it)."""
        table = schema.prediction_sketches
        with self.registry.read() as conn:
            if ids:
                gone = conn.execute(delete(table).where(table.c.id.in_(list(ids)))).rowcount
                if gone != len(ids):
                    raise Conflict("window sketches changed meanwhile; try again")
            if rows:
                conn.execute(insert(table), [_values(row) for row in rows])

    def compact(self, before: float) -> int:
        """Merge the buckets shorter than :data:`COMPACT_S` that ended by the last whole
        hour before ``before`` into one row per model, version, arm and hour; how many
        rows were merged away."""
        table = schema.prediction_sketches
        limit = before // COMPACT_S * COMPACT_S
        short = (table.c.ends_at <= limit) & (table.c.ends_at - table.c.starts_at < COMPACT_S)
        with self.registry.read() as conn:
            found = _fetch(conn, select(table).where(short))
            groups: dict[tuple[Any, ...], list[Any]] = defaultdict(list)
            for row in found:
                hour = row.starts_at // COMPACT_S * COMPACT_S
                groups[(row.model, row.version, row.arm, hour)].append(row)
            merged = 0
            for group in groups.values():
                if len(group) > 1:
                    merged += _compact(conn, group)
        return merged

    def prune(self, before: float) -> int:
        """Delete buckets that ended before ``before``; how many went."""
        table = schema.prediction_sketches
        with self.registry.read() as conn:
            return int(conn.execute(delete(table).where(table.c.ends_at < before)).rowcount)


def _fetch(conn: Connection, query: Any) -> list[Any]:
    """``query``'s rows; on PostgreSQL in binary (a bytea in text is hex, twice its size,
    decoded in Python: a day's megabytes read four times slower)."""
    if not is_postgres(conn.engine):
        return list(conn.execute(query).all())
    from psycopg.rows import namedtuple_row

    compiled = query.compile(dialect=conn.dialect)
    driver: Any = conn.connection.driver_connection  # psycopg's own connection
    with driver.cursor(binary=True, row_factory=namedtuple_row) as cursor:
        cursor.execute(str(compiled), compiled.params)
        return list(cursor.fetchall())


def _compact(conn: Connection, group: list[Any]) -> int:
    """One row for ``group``'s rows, which go (all of them, or the transaction fails)."""
    table = schema.prediction_sketches
    bucket = Bucket()
    for row in group:
        bucket = bucket.merge(Bucket.from_bytes(row.sketch))
    first = group[0]
    merged = SketchRow(
        new_writer(),
        first.model,
        first.version,
        first.arm,
        min(row.starts_at for row in group),
        max(row.ends_at for row in group),
        bucket,
    )
    ids = [row.id for row in group]
    gone = conn.execute(delete(table).where(table.c.id.in_(ids))).rowcount
    if gone != len(ids):  # another compaction took some of them first
        raise Conflict("window sketches were compacted concurrently; try again")
    conn.execute(insert(table).values(**_values(merged)))
    return len(ids)


def _values(row: SketchRow) -> dict[str, Any]:
    return {
        "writer": row.writer,
        "model": row.model,
        "version": row.version,
        "arm": row.arm,
        "starts_at": row.starts_at,
        "ends_at": row.ends_at,
        "logged": row.bucket.logged,
        "sketch": row.bucket.to_bytes(),
    }


def _to_row(row: Any) -> SketchRow:
    return SketchRow(
        row.writer,
        row.model,
        row.version,
        row.arm,
        row.starts_at,
        row.ends_at,
        Bucket.from_bytes(bytes(row.sketch)),
    )
