"""Engines for the registry database: SQLite (WAL) by default, PostgreSQL with psycopg 3."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError

from servewell.errors import InvalidConfig, MissingDependency, StorageFailed

SQLITE_BUSY_TIMEOUT_MS = 30_000


def create_registry_engine(url: str) -> Engine:
    """An engine for ``url`` (SQLite or PostgreSQL); a bare ``postgresql://`` URL means
    psycopg 3."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        # Not echoed: a URL that does not parse may still hold a password.
        raise InvalidConfig(
            "the registry database URL does not parse; expected e.g. "
            "sqlite:///path/registry.db or postgresql://user@host/database"
        ) from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(url)
    if backend != "postgresql":
        raise InvalidConfig(f"the registry runs on SQLite or PostgreSQL, not '{backend}'")
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    try:
        return create_engine(parsed, pool_pre_ping=True, pool_size=5, max_overflow=5)
    except ModuleNotFoundError as exc:
        raise MissingDependency("psycopg", "postgres") from exc


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def as_utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; every time servewell stores is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _sqlite_engine(url: str) -> Engine:
    database = make_url(url).database
    if database and database != ":memory:":
        folder = Path(database).parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageFailed(f"cannot create the folder {folder}: {exc.strerror}") from exc
    engine = create_engine(url)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transactions out of the sqlite3 module's hands so BEGIN IMMEDIATE below
        # is what starts them: writers then queue on the lock instead of failing late.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


@contextmanager
def map_sql_errors(url: str) -> Iterator[None]:
    """Translate a database that cannot be reached into StorageFailed, once, at this edge."""
    try:
        yield
    except OperationalError as exc:
        safe_url = make_url(url).render_as_string(hide_password=True)
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise StorageFailed(f"registry database {safe_url} failed: {reason}") from exc
    except DBAPIError as exc:
        if exc.connection_invalidated:
            raise StorageFailed("lost the connection to the registry database") from exc
        raise
