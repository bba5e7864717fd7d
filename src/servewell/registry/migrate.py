"""Bring a registry database to the newest schema, safely from many processes at once."""

from __future__ import annotations

from sqlalchemy import Engine, text

from servewell.registry.database import is_postgres

#: Arbitrary constant naming servewell's migration lock in PostgreSQL.
_PG_LOCK_KEY = 7_253_181_001


def upgrade_to_head(engine: Engine) -> None:
    """Run pending migrations. Concurrent callers queue: PostgreSQL on an advisory lock,
    SQLite on its write lock (every transaction here begins IMMEDIATE)."""
    _migrate(engine, "upgrade", "head")


def downgrade_to(engine: Engine, revision: str) -> None:
    """Take the schema back to ``revision`` (each later migration's downgrade, newest
    first): for tests of a migration on a registry made before it."""
    _migrate(engine, "downgrade", revision)


def _migrate(engine: Engine, direction: str, revision: str) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", "servewell.registry:migrations")
    with engine.begin() as connection:
        if is_postgres(engine):
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
        config.attributes["connection"] = connection
        getattr(command, direction)(config, revision)
