"""Ground truth for the prediction log, in the registry database whichever store keeps
the predictions: labels joined to logged predictions by model and request id.

A label for an id logged before replaces the one it had (the same batch sent twice
changes nothing); a label for an id never logged is not stored, and is reported back
instead. Each store says which ids it logged; storing, reading and pruning the labels
is this module's, once for both.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Connection, delete, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite

from servewell.registry import schema
from servewell.registry.database import is_postgres
from servewell.registry.sql import SqlRegistry

#: Rows per INSERT statement, and request ids per ``IN (...)`` (SQLite allows 32766
#: parameters; PostgreSQL 65535).
CHUNK = 500
#: At most this many unknown ids are named in an answer (all are counted).
UNKNOWN_SHOWN = 100
#: Rows deleted per transaction when old rows are pruned.
PRUNE_ROWS = 10_000

KnownIds = Callable[[list[str]], set[str]]
"""Which of these request ids a store logged (for one model)."""


@dataclass(frozen=True, slots=True)
class FeedbackResult:
    """What a batch of labels did: how many were stored, which ids nobody logged."""

    accepted: int
    unknown: list[str] = field(default_factory=list)
    """The first :data:`UNKNOWN_SHOWN` unknown ids, in the order given."""
    unknown_count: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "unknown": self.unknown,
            "unknown_count": self.unknown_count,
        }


def store_labels(
    registry: SqlRegistry, model: str, labels: Sequence[tuple[str, Any]], known_ids: KnownIds
) -> FeedbackResult:
    """Store each ``(request_id, label)`` whose id ``known_ids`` knows, replacing an
    earlier label (the last one given wins within a batch); count the others."""
    latest = dict(labels)  # the last label for an id wins
    known = known_ids(list(latest))
    now = datetime.now(UTC)
    rows = [
        {
            "model": model,
            "request_id": request_id,
            "label": orjson.dumps(label).decode(),
            "received_at": now,
        }
        for request_id, label in latest.items()
        if request_id in known
    ]
    with registry.read() as conn:
        for chunk in chunks(rows, CHUNK):
            conn.execute(_upsert(conn, chunk))
    unknown = [request_id for request_id in latest if request_id not in known]
    return FeedbackResult(len(rows), unknown[:UNKNOWN_SHOWN], len(unknown))


def labels_for(
    registry: SqlRegistry, model: str, request_ids: Sequence[str]
) -> dict[str, tuple[str, datetime]]:
    """The label (JSON text) and its arrival of each of ``request_ids`` that has one."""
    f = schema.feedback
    found: dict[str, tuple[str, datetime]] = {}
    with registry.read() as conn:
        for chunk in chunks(sorted(set(request_ids)), CHUNK):
            query = select(f.c.request_id, f.c.label, f.c.received_at).where(
                f.c.model == model, f.c.request_id.in_(chunk)
            )
            found.update((row[0], (row[1], row[2])) for row in conn.execute(query))
    return found


def prune_labels(registry: SqlRegistry, before: datetime, batch_rows: int = PRUNE_ROWS) -> int:
    """Delete labels received before ``before``, ``batch_rows`` a transaction."""
    f = schema.feedback
    old = select(f.c.model, f.c.request_id).where(f.c.received_at < before)
    return delete_in_batches(
        registry, delete(f), tuple_(f.c.model, f.c.request_id), old, batch_rows
    )


def delete_in_batches(
    registry: SqlRegistry, statement: Any, key: Any, rows: Any, batch_rows: int
) -> int:
    """Run the DELETE ``statement`` on the rows ``rows`` selects (by their ``key``),
    ``batch_rows`` a transaction: a month of rows deleted at once would hold the
    table's write lock, and serving's inserts behind it, for minutes."""
    gone = 0
    while True:
        with registry.read() as conn:
            done = int(conn.execute(statement.where(key.in_(rows.limit(batch_rows)))).rowcount)
        gone += done
        if done < batch_rows:
            return gone


def _upsert(conn: Connection, rows: Sequence[dict[str, Any]]) -> Any:
    """INSERT ... ON CONFLICT (model, request_id) DO UPDATE, in either dialect."""
    dialect: Any = postgresql if is_postgres(conn.engine) else sqlite
    statement = dialect.insert(schema.feedback).values(list(rows))
    return statement.on_conflict_do_update(
        index_elements=["model", "request_id"],
        set_={"label": statement.excluded.label, "received_at": statement.excluded.received_at},
    )


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
