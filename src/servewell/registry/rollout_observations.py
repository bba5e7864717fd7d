"""What serving processes measured of a rollout's versions, in the registry database.

Error rates and p99s must be compared across every replica and worker, not within
the one that judges: each process writes, about once a second, what it counted since
its last report (one row per version it served, none when it served nothing), and the
lease holder sums the rows of the step it judges. Rows before the current step are
deleted as the rollout moves on, and all of them once it has ended.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import Connection, delete, insert, select

from servewell.core.rollout import Window
from servewell.registry import schema
from servewell.registry.sql import SqlRegistry


class RolloutObservations:
    def __init__(self, registry: SqlRegistry) -> None:
        self.registry = registry

    def report(
        self, rollout_id: int, holder: str, windows: Mapping[int, Window], at: float
    ) -> None:
        """``holder``'s counts per version since its last report, as of ``at``."""
        rows = [
            {
                "rollout_id": rollout_id,
                "holder": holder,
                "version": version,
                "observed_at": at,
                "requests": window.requests,
                "errors": window.errors,
                "buckets": list(window.buckets),
            }
            for version, window in windows.items()
            if window.requests > 0
        ]
        if rows:
            self.registry.write(
                lambda conn: conn.execute(insert(schema.rollout_observations), rows)
            )

    def since(self, rollout_id: int, start: float) -> dict[int, Window]:
        """Per version: every process's counts reported after ``start``, summed."""
        o = schema.rollout_observations
        with self.registry.read() as conn:
            rows = conn.execute(
                select(o.c.version, o.c.requests, o.c.errors, o.c.buckets).where(
                    o.c.rollout_id == rollout_id, o.c.observed_at > start
                )
            ).all()
        sums: dict[int, Window] = {}
        for row in rows:
            window = Window(row.requests, row.errors, tuple(row.buckets))
            sums[row.version] = sums.get(row.version, Window()).plus(window)
        return sums

    def forget(self, rollout_id: int, before: float | None = None) -> None:
        """Delete the rollout's rows reported at or before ``before`` (None: all)."""
        o = schema.rollout_observations

        def drop(conn: Connection) -> None:
            query = delete(o).where(o.c.rollout_id == rollout_id)
            if before is not None:
                query = query.where(o.c.observed_at <= before)
            conn.execute(query)

        self.registry.write(drop)
