"""Alert rules' state and events in the registry database, and the alias move a
``rollback`` rule makes.

The evaluating process writes each rule's state (:class:`RuleState`, what its
:class:`~servewell.core.alerting.AlertTracker` holds) and the events of one evaluation
in one transaction, so whoever evaluates next — the same process after a restart, or
another replica that took the ``alerts`` lease over — resumes the episodes where they
were, and every replica can show the same gauges.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, insert, select

from servewell.core.alerting import AlertEvent, AlertState
from servewell.registry import schema
from servewell.registry.alias_moves import last_move, move_alias
from servewell.registry.database import as_utc
from servewell.registry.lookups import alias_version, model_id
from servewell.registry.records import AliasMove
from servewell.registry.sql import SqlRegistry

#: ``moved_by`` of the alias moves alert rules make: ``alert:<rule>``.
MOVED_BY_PREFIX = "alert:"


@dataclass(frozen=True, slots=True)
class RuleState:
    """One rule's state as its last evaluation left it."""

    rule: str
    model: str
    state: AlertState
    since: float | None
    last_bad: float | None
    evaluated_at: float | None = None
    value: float | None = None
    version: int | None = None
    """The version the rule was last evaluated on (its model's ``production``)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "model": self.model,
            "state": str(self.state),
            "since": self.since,
            "last_bad": self.last_bad,
            "evaluated_at": self.evaluated_at,
            "value": self.value,
            "version": self.version,
        }


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An event with the version it was about and what the rule's action did."""

    event: AlertEvent
    version: int | None = None
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {**self.event.to_dict(), "version": self.version, "note": self.note}


class AlertStore:
    """Read and write alert rules' states and events."""

    def __init__(self, registry: SqlRegistry) -> None:
        self.registry = registry

    def save(self, states: list[RuleState], events: list[StoredEvent]) -> None:
        """Replace the states of these rules and add the events, in one transaction."""
        if not states and not events:
            return
        table = schema.alert_states

        def write(conn: Connection) -> None:
            if states:
                names = [state.rule for state in states]
                conn.execute(delete(table).where(table.c.rule.in_(names)))
                conn.execute(insert(table), [state.to_dict() for state in states])
            if events:
                conn.execute(insert(schema.alert_events), [_event_row(e) for e in events])

        self.registry.write(write)

    def states(self) -> dict[str, RuleState]:
        """Every stored rule's state, by rule name."""
        with self.registry.read() as conn:
            rows = conn.execute(select(schema.alert_states)).all()
        return {
            row.rule: RuleState(
                row.rule,
                row.model,
                AlertState(row.state),
                row.since,
                row.last_bad,
                row.evaluated_at,
                row.value,
                row.version,
            )
            for row in rows
        }

    def events(
        self, *, model: str | None = None, rule: str | None = None, limit: int = 50
    ) -> list[StoredEvent]:
        """The newest ``limit`` events (of one model or rule), newest first."""
        table = schema.alert_events
        query = select(table).order_by(table.c.at.desc(), table.c.id.desc()).limit(limit)
        if model is not None:
            query = query.where(table.c.model == model)
        if rule is not None:
            query = query.where(table.c.rule == rule)
        with self.registry.read() as conn:
            return [_to_event(row._asdict()) for row in conn.execute(query)]

    def prune(self, before: float) -> int:
        """Delete the events older than ``before`` (seconds since the epoch); how many."""
        table = schema.alert_events
        return self.registry.write(
            lambda conn: conn.execute(delete(table).where(table.c.at < before)).rowcount
        )


def _event_row(stored: StoredEvent) -> dict[str, Any]:
    return {**stored.event.to_dict(), "version": stored.version, "note": stored.note}


def _to_event(row: dict[str, Any]) -> StoredEvent:
    fields = {name: row[name] for name in AlertEvent.__dataclass_fields__}
    return StoredEvent(AlertEvent(**fields), row["version"], row["note"])


@dataclass(frozen=True, slots=True)
class Rollback:
    """What a rule's rollback did: the move, or why there was none."""

    move: AliasMove | None
    note: str


def roll_back(
    registry: SqlRegistry, name: str, alias: str, bad_version: int, rule: str, cooldown_s: float
) -> Rollback:
    """Move ``alias`` of ``name`` back to where it pointed before, recorded as moved by
    ``alert:<rule>``, only if it still points at ``bad_version`` (someone may have moved
    it since the evaluation) and no alert rule moved it within ``cooldown_s``."""

    def back(conn: Connection) -> Rollback:
        model = model_id(conn, name)
        if alias_version(conn, model, alias) != bad_version:
            return Rollback(None, f"no rollback: {alias} does not point at v{bad_version}")
        last = last_move(conn, name, model, alias)
        if last is None or last.from_version is None:
            return Rollback(None, f"no rollback: {alias} has no previous version")
        recent = _last_alert_move_at(conn, model, alias)
        if recent is not None and recent > datetime.now(UTC) - timedelta(seconds=cooldown_s):
            when = recent.isoformat(timespec="seconds")
            return Rollback(None, f"no rollback: an alert moved {alias} at {when} (cooldown)")
        moved = move_alias(conn, name, model, alias, last.from_version, MOVED_BY_PREFIX + rule)
        assert moved is not None  # the history ends where the alias points
        return Rollback(moved, f"rolled {alias} back from v{bad_version} to v{moved.to_version}")

    return registry.write(back)


def _last_alert_move_at(conn: Connection, model: int, alias: str) -> datetime | None:
    """When an alert rule last moved ``alias`` (None: never)."""
    h = schema.alias_history
    moved_at = conn.scalar(
        select(h.c.moved_at)
        .where(h.c.model_id == model, h.c.alias == alias)
        .where(h.c.moved_by.startswith(MOVED_BY_PREFIX))
        .order_by(h.c.revision.desc())
        .limit(1)
    )
    return None if moved_at is None else as_utc(moved_at)
