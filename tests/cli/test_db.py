"""`servewell db upgrade`: migrates an empty registry to head and exits; one line and
exit 1 (storage failed) when the database cannot be reached."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import inspect, text
from typer.testing import Result

from servewell.registry.database import create_registry_engine
from servewell.registry.migrate import downgrade_to

Invoke = Callable[..., Result]

HEAD_TABLES = {"models", "model_versions", "api_keys", "leases"}


def _revision(url: str) -> str:
    engine = create_registry_engine(url)
    try:
        with engine.connect() as connection:
            return str(connection.execute(text("SELECT version_num FROM alembic_version")).scalar())
    finally:
        engine.dispose()


def test_db_upgrade_migrates_to_head_and_exits(
    invoke: Invoke, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SERVEWELL_DATABASE_URL", database_url)
    result = invoke("db", "upgrade")
    assert result.exit_code == 0, result.output
    assert "up to date" in result.stdout
    engine = create_registry_engine(database_url)
    try:
        assert set(inspect(engine).get_table_names()) >= HEAD_TABLES
    finally:
        engine.dispose()
    head = _revision(database_url)

    older = create_registry_engine(database_url)
    try:
        downgrade_to(older, "0007")  # a registry made before the newest migration
    finally:
        older.dispose()
    assert _revision(database_url) != head
    assert invoke("db", "upgrade").exit_code == 0
    assert _revision(database_url) == head
    assert invoke("db", "upgrade").exit_code == 0  # nothing pending: still fine


def test_db_upgrade_names_an_unreachable_database(
    invoke: Invoke, monkeypatch: pytest.MonkeyPatch, home: Path
) -> None:
    monkeypatch.setenv("SERVEWELL_DATABASE_URL", "postgresql://nobody:secret@127.0.0.1:1/none")
    result = invoke("db", "upgrade")
    assert result.exit_code != 0
    assert "registry database" in result.stderr
    assert "secret" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
