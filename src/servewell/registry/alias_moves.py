"""Moving an alias, and the history every move leaves (for ``servewell rollback``).

Each move is one row: the alias, the version it pointed at before and after (None for
created or removed), when, by whom, and a registry-wide ``revision`` that serving
processes poll to learn within a second that an alias moved.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, select

from servewell.registry import schema
from servewell.registry.database import as_utc
from servewell.registry.lookups import alias_version, next_revision, version_id
from servewell.registry.records import AliasMove


def move_alias(
    conn: Connection,
    name: str,
    model: int,
    alias: str,
    version: int | None,
    by: str | None,
) -> AliasMove | None:
    """Point ``alias`` at ``version`` (None removes it) and record the move; None when
    it pointed there already (nothing moved, nothing recorded)."""
    before = alias_version(conn, model, alias)
    if before == version:
        return None
    table = schema.aliases
    where = (table.c.model_id == model, table.c.name == alias)
    now = datetime.now(UTC)
    if version is None:
        conn.execute(table.delete().where(*where))
    else:
        target = version_id(conn, model, name, version)
        if before is None:
            conn.execute(
                table.insert().values(model_id=model, name=alias, version_id=target, updated_at=now)
            )
        else:
            conn.execute(table.update().where(*where).values(version_id=target, updated_at=now))
    row = {
        "model_id": model,
        "alias": alias,
        "from_version": before,
        "to_version": version,
        "revision": next_revision(conn, schema.alias_history.c.revision),
        "moved_at": now,
        "moved_by": by,
    }
    conn.execute(schema.alias_history.insert().values(**row))
    return _to_move(name, row)


def history(conn: Connection, name: str, model: int, alias: str | None) -> list[AliasMove]:
    """The moves of one alias (or of all the model's aliases), oldest first."""
    h = schema.alias_history
    query = select(h).where(h.c.model_id == model).order_by(h.c.revision)
    if alias is not None:
        query = query.where(h.c.alias == alias)
    return [_to_move(name, row._asdict()) for row in conn.execute(query)]


def last_move(conn: Connection, name: str, model: int, alias: str) -> AliasMove | None:
    h = schema.alias_history
    row = conn.execute(
        select(h)
        .where(h.c.model_id == model, h.c.alias == alias)
        .order_by(h.c.revision.desc())
        .limit(1)
    ).first()
    return None if row is None else _to_move(name, row._asdict())


def _to_move(name: str, row: dict[str, Any]) -> AliasMove:
    return AliasMove(
        name=name,
        alias=row["alias"],
        from_version=row["from_version"],
        to_version=row["to_version"],
        revision=row["revision"],
        moved_at=as_utc(row["moved_at"]),
        moved_by=row["moved_by"],
    )
