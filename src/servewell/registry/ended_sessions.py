"""Dashboard sessions signed out before they expired, in the registry database.

A session is a signed cookie (``http/dashboard/session.py``): nothing on the server
holds it, so signing out records the cookie's nonce here, with the time the cookie
would have expired (seconds since the epoch), and every server process refuses a
cookie whose nonce is listed (``serving/ended_sessions.py`` re-reads the list). A row
is no use once its cookie has expired: each sign-out deletes the rows that have.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import Connection, delete, insert, select

from servewell.registry import schema
from servewell.registry.sql import SqlRegistry


class EndedSessionStore:
    """Record a signed-out session; list the ones whose cookies have not expired yet."""

    def __init__(self, registry: SqlRegistry, clock: Callable[[], float] = time.time) -> None:
        self.registry = registry
        self.clock = clock

    def end(self, nonce: str, expires_at: float) -> None:
        """Refuse the session ``nonce`` from now on (again: no change), and forget
        every ended session whose cookie has expired."""
        table = schema.ended_sessions

        def record(conn: Connection) -> None:
            conn.execute(delete(table).where(table.c.expires_at <= self.clock()))
            known = conn.scalar(select(table.c.nonce).where(table.c.nonce == nonce))
            if known is None:  # a concurrent sign-out's IntegrityError: ``write`` retries
                conn.execute(insert(table).values(nonce=nonce, expires_at=float(expires_at)))

        self.registry.write(record)

    def active(self) -> frozenset[str]:
        """The nonces of the ended sessions whose cookies have not expired yet."""
        table = schema.ended_sessions
        with self.registry.read() as conn:
            rows = conn.scalars(select(table.c.nonce).where(table.c.expires_at > self.clock()))
            return frozenset(rows)
