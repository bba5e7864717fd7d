"""Load tests recorded against model versions in the registry database.

``servewell loadtest`` records what it ran (settings, SLO, verdict, a summary per step)
against the version that answered; ``servewell doctor`` and the dashboard read the
latest record of a version back (:meth:`LoadTestStore.latest`).
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Row, insert, select

from servewell.registry import lookups, schema
from servewell.registry.database import as_utc
from servewell.registry.sql import SqlRegistry


@dataclass(frozen=True, slots=True)
class LoadTestRecord:
    """One recorded load test of one model version."""

    model: str
    version: int
    started_at: datetime
    """When the test started (aware, UTC)."""
    passed: bool
    slo: str
    """The SLO as given (``p99<50ms,errors<0.1%``); empty when there was none."""
    summary: dict[str, Any]
    """Per step: throughput, latency quantiles in ms, errors by status (``loadtest/stats.py``)."""
    duration_s: float = 0.0
    protocol: str = "rest"
    settings: dict[str, Any] = field(default_factory=dict)
    """What ran: concurrency steps or the rate, duration, ramp, rows per request..."""
    by: str | None = None
    id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "model": self.model,
            "version": self.version,
            "started_at": self.started_at.isoformat(),
            "duration_s": self.duration_s,
            "protocol": self.protocol,
            "settings": self.settings,
            "slo": self.slo,
            "passed": self.passed,
            "summary": self.summary,
            "by": self.by,
        }


_COLUMNS = (
    "model",
    "version",
    "started_at",
    "duration_s",
    "protocol",
    "settings",
    "slo",
    "passed",
    "summary",
    "by",
)


class LoadTestStore:
    """Record load tests and read them back."""

    def __init__(self, registry: SqlRegistry) -> None:
        self.registry = registry

    def record(
        self,
        model: str,
        version: int,
        *,
        passed: bool,
        slo: str,
        summary: dict[str, Any],
        started_at: datetime | None = None,
        duration_s: float = 0.0,
        protocol: str = "rest",
        settings: dict[str, Any] | None = None,
        by: str | None = None,
    ) -> LoadTestRecord:
        """Store one load test of ``model`` v``version`` (ModelNotFound or VersionNotFound
        when the registry has no such version); ``started_at`` defaults to now."""
        record = LoadTestRecord(
            model=model,
            version=version,
            started_at=as_utc(started_at or datetime.now(UTC)),
            passed=passed,
            slo=slo,
            summary=summary,
            duration_s=float(duration_s),
            protocol=protocol,
            settings=dict(settings or {}),
            by=by,
        )
        row = {name: getattr(record, name) for name in _COLUMNS}

        def write(conn: Connection) -> int:
            lookups.version_id(conn, lookups.model_id(conn, model), model, version)
            inserted = conn.execute(insert(schema.load_tests).values(row)).inserted_primary_key
            assert inserted is not None
            return int(inserted[0])

        return replace(record, id=self.registry.write(write))

    def latest(self, model: str, version: int) -> LoadTestRecord | None:
        """The newest load test of ``model`` v``version``, or None when it has none."""
        t = schema.load_tests
        query = (
            select(t)
            .where(t.c.model == model, t.c.version == version)
            .order_by(t.c.started_at.desc(), t.c.id.desc())
            .limit(1)
        )
        with self.registry.read() as conn:
            row = conn.execute(query).first()
        return None if row is None else _to_record(row)

    def list(self, model: str | None = None) -> builtins.list[LoadTestRecord]:
        """Every load test (of one model), newest first."""
        t = schema.load_tests
        query = select(t).order_by(t.c.started_at.desc(), t.c.id.desc())
        if model is not None:
            query = query.where(t.c.model == model)
        with self.registry.read() as conn:
            return [_to_record(row) for row in conn.execute(query)]


def _to_record(row: Row[Any]) -> LoadTestRecord:
    return LoadTestRecord(
        model=row.model,
        version=row.version,
        started_at=as_utc(row.started_at),
        passed=bool(row.passed),
        slo=row.slo,
        summary=dict(row.summary),
        duration_s=row.duration_s,
        protocol=row.protocol,
        settings=dict(row.settings),
        by=row.by,
        id=row.id,
    )
