"""LLM spend in the registry database: one row per key, model and UTC day, added to in
batches (``serving/spend.SpendLedger`` flushes them), read by every server's budgets
and by ``servewell usage``.

Adding is one ``INSERT ... ON CONFLICT DO UPDATE`` per row, adding the batch's counts to
the row's (SQLite and PostgreSQL both speak it), so replicas writing the same key,
model and day never lose each other's counts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from servewell.registry import schema
from servewell.registry.database import map_sql_errors
from servewell.registry.sql import SqlRegistry


@dataclass(frozen=True, slots=True)
class SpendRow:
    """What one key spent on one model on one UTC day (``"2026-12-01"``)."""

    key: str
    model: str
    day: str
    requests: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float


class SpendStore:
    def __init__(self, registry: SqlRegistry) -> None:
        self.registry = registry

    def add(self, rows: Iterable[SpendRow]) -> None:
        """Add each row's counts to the stored row of its key, model and day."""
        table = schema.llm_spend
        values = [_values(row) for row in rows]
        if not values:
            return
        insert = _insert_for(self.registry.engine.dialect.name)
        with map_sql_errors(self.registry.url), self.registry.engine.begin() as conn:
            for value in values:
                statement = insert(table).values(**value)
                excluded = statement.excluded
                conn.execute(
                    statement.on_conflict_do_update(
                        index_elements=["key", "model", "day"],
                        set_={
                            name: table.c[name] + excluded[name]
                            for name in (
                                "requests",
                                "prompt_tokens",
                                "completion_tokens",
                                "cost_usd",
                            )
                        },
                    )
                )

    def rows(
        self, since_day: str, key: str | None = None, model: str | None = None
    ) -> list[SpendRow]:
        """Rows from ``since_day`` on (inclusive), by day, key and model."""
        table = schema.llm_spend
        query = select(table).where(table.c.day >= since_day)
        if key is not None:
            query = query.where(table.c.key == key)
        if model is not None:
            query = query.where(table.c.model == model)
        query = query.order_by(table.c.day, table.c.key, table.c.model)
        with map_sql_errors(self.registry.url), self.registry.engine.begin() as conn:
            found = conn.execute(query).all()
        return [
            SpendRow(
                key=row.key,
                model=row.model,
                day=row.day,
                requests=int(row.requests),
                prompt_tokens=int(row.prompt_tokens),
                completion_tokens=int(row.completion_tokens),
                cost_usd=float(row.cost_usd),
            )
            for row in found
        ]

    def spent_by_day(self, since_day: str) -> dict[tuple[str, str], float]:
        """USD per (key, day), from ``since_day`` on: what the budgets read."""
        table = schema.llm_spend
        query = (
            select(table.c.key, table.c.day, func.sum(table.c.cost_usd))
            .where(table.c.day >= since_day)
            .group_by(table.c.key, table.c.day)
        )
        with map_sql_errors(self.registry.url), self.registry.engine.begin() as conn:
            found = conn.execute(query).all()
        return {(key, day): float(total or 0.0) for key, day, total in found}


def _values(row: SpendRow) -> dict[str, object]:
    return {
        "key": row.key,
        "model": row.model,
        "day": row.day,
        "requests": row.requests,
        "prompt_tokens": row.prompt_tokens,
        "completion_tokens": row.completion_tokens,
        "cost_usd": row.cost_usd,
    }


def _insert_for(dialect: str) -> Callable[..., Any]:
    """The dialect's ``insert`` (with ``on_conflict_do_update``)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgres_insert

        return postgres_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert
