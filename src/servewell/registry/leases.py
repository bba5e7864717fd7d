"""Leases in the registry database: which one of many processes does a job that must
run once (a canary rollout's next step, an alert rule's evaluation) while every
replica could.

A lease is a named row with a holder and an expiry (wall-clock seconds since the
epoch, so holders on other machines compare the same numbers; a TTL well above their
clock skew keeps that honest). A holder renews before the expiry; a holder that dies
stops renewing, and anyone may take the lease once it has expired. Taking and renewing
is one conditional UPDATE (or the INSERT that creates the row), so two processes never
both hold it: PostgreSQL re-checks the condition after a concurrent writer commits,
and SQLite serializes writers.
"""

from __future__ import annotations

import os
import secrets
import socket
import time
from collections.abc import Callable

from sqlalchemy import Connection, delete, insert, or_, select, update

from servewell.registry import schema
from servewell.registry.sql import SqlRegistry


def holder_id() -> str:
    """A name for this process that no other process, here or on another machine, has:
    host, pid and a random suffix (a pid is reused after a restart)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class Leases:
    """Take, renew, read and give up named leases."""

    def __init__(self, registry: SqlRegistry, clock: Callable[[], float] = time.time) -> None:
        self.registry = registry
        self.clock = clock

    def acquire(self, name: str, holder: str, ttl_s: float) -> bool:
        """Hold ``name`` for ``ttl_s`` from now: True when it was free, had expired or
        was ``holder``'s already (then renewed); False while another holds it."""
        if ttl_s <= 0:
            raise ValueError(f"a lease's ttl must be positive, not {ttl_s}")

        def take(conn: Connection) -> bool:
            now = self.clock()
            leases = schema.leases
            taken = conn.execute(
                update(leases)
                .where(leases.c.name == name)
                .where(or_(leases.c.holder == holder, leases.c.expires_at <= now))
                .values(holder=holder, expires_at=now + ttl_s)
            ).rowcount
            if taken:
                return True
            if conn.scalar(select(leases.c.name).where(leases.c.name == name)) is not None:
                return False
            # A race to create the row: the loser's IntegrityError makes ``write`` run
            # this again, and then the row exists.
            conn.execute(insert(leases).values(name=name, holder=holder, expires_at=now + ttl_s))
            return True

        return self.registry.write(take)

    def release(self, name: str, holder: str) -> None:
        """Give ``name`` up at once (if ``holder`` holds it), so another may take it
        without waiting for the expiry."""
        leases = schema.leases

        def give_up(conn: Connection) -> None:
            conn.execute(
                delete(leases).where(leases.c.name == name).where(leases.c.holder == holder)
            )

        self.registry.write(give_up)

    def holder(self, name: str) -> str | None:
        """Who holds ``name`` now (None when nobody does, or the lease has expired)."""
        leases = schema.leases
        with self.registry.read() as conn:
            row = conn.execute(
                select(leases.c.holder, leases.c.expires_at).where(leases.c.name == name)
            ).first()
        if row is None or row.expires_at <= self.clock():
            return None
        return str(row.holder)
