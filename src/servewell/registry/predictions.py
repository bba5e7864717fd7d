"""The prediction log in the registry database (``monitoring.store: database``, the
default): its rows, and what is read back, whichever store keeps them.

Rows arrive in batches from each server process's buffer (``serving/prediction_log.py``)
and are read back joined with their labels (``registry/feedback.py``) by model and
request id.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from operator import itemgetter
from typing import Any, NamedTuple

import orjson
from sqlalchemy import Connection, and_, delete, or_, select

from servewell.registry import schema
from servewell.registry.database import as_utc, is_postgres
from servewell.registry.feedback import (
    CHUNK,
    PRUNE_ROWS,
    FeedbackResult,
    chunks,
    delete_in_batches,
    prune_labels,
    store_labels,
)
from servewell.registry.sql import SqlRegistry

#: Rows per page when a window is scanned (:meth:`PredictionStore.scan`).
SCAN_ROWS = 5000


class PredictionRow(NamedTuple):
    """One row to write, in the table's column order."""

    at: float
    """When it was answered, in seconds since the epoch (``time.time()``)."""
    request_id: str
    model: str
    version: int
    arm: str | None
    key_name: str | None
    latency_ms: float
    cached: bool
    outputs: str | None
    """JSON text."""
    inputs: str | None
    """JSON text."""


_COLUMNS = (
    "logged_at, request_id, model, version, arm, key_name, latency_ms, cached, outputs, inputs"
)
#: The columns that may be the same in every row of a batch: arm, key name, cached,
#: outputs, inputs (by their place in :class:`PredictionRow`).
_SAME_IN_BATCH = (4, 5, 7, 8, 9)
_COPY = f"COPY predictions ({_COLUMNS}) FROM STDIN (FORMAT BINARY)"
#: PostgreSQL's types of the columns, in order (binary COPY sends each as its type).
_COPY_TYPES = ("float8", "text", "text", "int4", "text", "text", "float8", "bool", "text", "text")


@dataclass(frozen=True, slots=True)
class LoggedPrediction:
    """One logged prediction, with its label when one arrived."""

    logged_at: datetime
    request_id: str
    model: str
    version: int
    arm: str | None
    key_name: str | None
    latency_ms: float
    cached: bool
    outputs: Any
    inputs: Any
    label: Any = None
    labeled_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "logged_at": self.logged_at.isoformat(),
            "request_id": self.request_id,
            "model": self.model,
            "version": self.version,
            "arm": self.arm,
            "key_name": self.key_name,
            "latency_ms": self.latency_ms,
            "cached": self.cached,
            "outputs": self.outputs,
            "inputs": self.inputs,
            "label": self.label,
            "labeled_at": None if self.labeled_at is None else self.labeled_at.isoformat(),
        }


class SqlPredictionStore:
    """Write, read, label and prune the prediction log in the registry database."""

    def __init__(self, registry: SqlRegistry) -> None:
        self.registry = registry

    def write(self, rows: Sequence[PredictionRow]) -> None:
        """Insert rows in one transaction: on PostgreSQL by ``COPY ... FROM STDIN`` in
        binary (psycopg's C loop, a tenth of an ``executemany``'s client CPU), on SQLite
        by one ``executemany`` of the tuples as they are. Either way the driver's own
        loop, none of SQLAlchemy's per-row processing: this is the prediction log's hot
        loop, on a thread of a serving process."""
        if not rows:
            return
        with self.registry.read() as conn:
            if is_postgres(conn.engine):
                _copy(conn, rows)
            else:
                _insert(conn, rows)

    def close(self) -> None:
        """Nothing is held back: every write is in the database when it returns."""

    def prune(self, before: datetime, batch_rows: int = PRUNE_ROWS) -> int:
        """Delete predictions logged, and labels received, before ``before``, at most
        ``batch_rows`` a transaction; how many predictions went."""
        p = schema.predictions
        with self.registry.read() as conn:
            models = conn.execute(select(p.c.model).distinct()).scalars().all()
        gone = 0
        for model in models:  # by model: on the (model, logged_at) index
            old = select(p.c.id).where(p.c.model == model, p.c.logged_at < before.timestamp())
            gone += delete_in_batches(self.registry, delete(p), p.c.id, old, batch_rows)
        prune_labels(self.registry, before, batch_rows)
        return gone

    def rows(
        self, model: str, since: datetime | None = None, limit: int | None = None
    ) -> list[LoggedPrediction]:
        """``model``'s logged predictions since ``since``, oldest first (the newest
        ``limit`` when given), each with its label."""
        p = schema.predictions
        query = (
            self._joined().where(p.c.model == model).order_by(p.c.logged_at.desc(), p.c.id.desc())
        )
        if since is not None:
            query = query.where(p.c.logged_at >= since.timestamp())
        if limit is not None:
            query = query.limit(limit)
        with self.registry.read() as conn:
            found = conn.execute(query).all()
        return [_read_back(row) for row in reversed(found)]

    def scan(
        self,
        model: str,
        *,
        since: datetime | None = None,
        version: int | None = None,
        newest: int | None = None,
        page_rows: int = SCAN_ROWS,
    ) -> Iterator[list[LoggedPrediction]]:
        """``model``'s predictions (``version``'s alone when given) logged since
        ``since``, or its ``newest`` ones, oldest first with their labels,
        a page of ``page_rows`` at a time: a window of a million rows is read without
        holding it (each page starts after the last one's time and id)."""
        p = schema.predictions
        where = [p.c.model == model]

        if version is not None:
            where.append(p.c.version == version)
        if since is not None:
            where.append(p.c.logged_at >= since.timestamp())
        if newest is not None:
            first = self._nth_newest(where, newest)
            if first is not None:
                where.append(_after(*first, inclusive=True))
        last: tuple[float, int] | None = None
        while True:
            page = self._joined().where(*where).order_by(p.c.logged_at, p.c.id).limit(page_rows)
            if last is not None:
                page = page.where(_after(*last, inclusive=False))
            with self.registry.read() as conn:
                found = conn.execute(page).all()
            if found:
                yield [_read_back(row) for row in found]
            if len(found) < page_rows:
                return
            last = (found[-1].logged_at, found[-1].id)

    def labelled(
        self, model: str, since: datetime, *, version: int | None = None
    ) -> Iterator[list[LoggedPrediction]]:
        """``model``'s predictions logged since ``since`` that have a label, a chunk at
        a time, in no order: found from the labels received since then (a label is
        stored only for an id logged before it), so a window costs its labels, never
        its rows."""
        p, f = schema.predictions, schema.feedback
        recent = select(f.c.request_id).where(f.c.model == model, f.c.received_at >= since)
        with self.registry.read() as conn:
            request_ids = conn.execute(recent).scalars().all()
        for chunk in chunks(request_ids, CHUNK):
            where = [p.c.model == model, p.c.request_id.in_(chunk)]
            where.append(p.c.logged_at >= since.timestamp())
            if version is not None:
                where.append(p.c.version == version)
            with self.registry.read() as conn:
                found = conn.execute(self._joined(inner=True).where(*where)).all()
            if found:
                yield [_read_back(row) for row in found]

    def _joined(self, *, inner: bool = False) -> Any:
        """Predictions with their labels (``inner``: only those with one)."""
        p, f = schema.predictions, schema.feedback
        on = (f.c.model == p.c.model) & (f.c.request_id == p.c.request_id)
        query = select(p, f.c.label, f.c.received_at)
        return query.join(f, on) if inner else query.outerjoin(f, on)

    def _nth_newest(self, where: list[Any], n: int) -> tuple[float, int] | None:
        """The time and id of the ``n``-th newest row matching ``where`` (None: fewer)."""
        p = schema.predictions
        query = select(p.c.logged_at, p.c.id).where(*where)
        query = query.order_by(p.c.logged_at.desc(), p.c.id.desc()).offset(n - 1).limit(1)
        with self.registry.read() as conn:
            found = conn.execute(query).first()
        return None if found is None else (found.logged_at, found.id)

    def label(self, model: str, labels: Sequence[tuple[str, Any]]) -> FeedbackResult:
        """Store each ``(request_id, label)`` whose id ``model`` logged, replacing an
        earlier label; count the others (``registry/feedback.py``)."""
        return store_labels(self.registry, model, labels, lambda ids: self._logged_ids(model, ids))

    def _logged_ids(self, model: str, request_ids: list[str]) -> set[str]:
        p = schema.predictions
        known: set[str] = set()
        with self.registry.read() as conn:
            for chunk in chunks(request_ids, CHUNK):
                query = select(p.c.request_id).where(p.c.model == model, p.c.request_id.in_(chunk))
                known.update(conn.execute(query.distinct()).scalars())
        return known


def _after(logged_at: float, row_id: int, *, inclusive: bool) -> Any:
    """Rows after (or from) one row, in (time, id) order."""
    p = schema.predictions
    same = p.c.id >= row_id if inclusive else p.c.id > row_id
    return or_(p.c.logged_at > logged_at, and_(p.c.logged_at == logged_at, same))


def _insert(conn: Connection, rows: Sequence[PredictionRow]) -> None:
    """``rows`` into ``predictions`` by one ``executemany``, in ``conn``'s transaction. A
    column that is None in every row of the batch (an arm without a split, a key name
    without keys) is written as ``NULL`` in the statement, as is ``cached`` when it is the
    same in every row: Python's sqlite3 binds an int, a float or a str at once, but looks
    for an adapter for None or a bool (~0.4 µs a value, a tenth of the row's insert)."""
    literals: list[str | int | None] = []
    for at in _SAME_IN_BATCH:
        column = list(map(itemgetter(at), rows))
        if at == 7:  # cached
            hits = column.count(True)
            literals.append(None if 0 < hits < len(rows) else int(hits > 0))
        else:
            literals.append("NULL" if column.count(None) == len(rows) else None)
    statement, kept = _sqlite_insert(tuple(literals))
    conn.exec_driver_sql(statement, list(map(itemgetter(*kept), rows)))


@cache
def _sqlite_insert(literals: tuple[str | int | None, ...]) -> tuple[str, tuple[int, ...]]:
    """The insert that writes each of :data:`_SAME_IN_BATCH` as its literal (None: bound
    per row), and the places of the values bound per row."""
    values: list[str] = ["?"] * len(PredictionRow._fields)
    for at, literal in zip(_SAME_IN_BATCH, literals, strict=True):
        if literal is not None:
            values[at] = str(literal)
    kept = tuple(at for at, value in enumerate(values) if value == "?")
    return f"INSERT INTO predictions ({_COLUMNS}) VALUES ({', '.join(values)})", kept


def _copy(conn: Connection, rows: Sequence[PredictionRow]) -> None:
    """``rows`` into ``predictions`` by binary COPY, in ``conn``'s transaction."""
    driver: Any = conn.connection.driver_connection  # psycopg's own connection
    with driver.cursor() as cursor, cursor.copy(_COPY) as copy:
        copy.set_types(_COPY_TYPES)
        write_row = copy.write_row
        for row in rows:
            write_row(row)


def to_prediction(
    fields: Sequence[Any], label: str | None, received_at: datetime | None
) -> LoggedPrediction:
    """A logged prediction as read back (either store's): ``fields`` are its columns in
    :class:`PredictionRow`'s order, ``label`` its label's JSON text, when it has one."""
    logged_at, request_id, model, version, arm, key_name, latency_ms, cached, outputs, inputs = (
        fields
    )
    return LoggedPrediction(
        logged_at=datetime.fromtimestamp(logged_at, UTC),
        request_id=request_id,
        model=model,
        version=version,
        arm=arm,
        key_name=key_name,
        latency_ms=latency_ms,
        cached=bool(cached),
        outputs=_json(outputs),
        inputs=_json(inputs),
        label=_json(label),
        labeled_at=None if received_at is None else as_utc(received_at),
    )


def _read_back(row: Any) -> LoggedPrediction:
    """A row of the table joined with its label (``id`` first, the label's columns last)."""
    return to_prediction(row[1:11], row.label, row.received_at)


def _json(text: str | None) -> Any:
    return None if text is None else orjson.loads(text)
