"""Every alias move is recorded, and rollback walks it back (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from servewell.bootstrap import Services
from servewell.core.ref import ModelRef
from servewell.core.signature import Signature
from servewell.errors import AliasNotFound, ModelNotFound, NoPreviousVersion
from servewell.registration.register import RegisterOptions, register_file
from serving_models import PYTHON_MODELS, register_python


def _points_at(services: Services, alias: str) -> int:
    return services.registry.resolve(ModelRef("fraud", alias=alias)).version


def _versions(services: Services, name: str, count: int) -> None:
    for _ in range(count):
        register_python(services, name, "sum", signature="sum.json")


def test_moves_are_recorded_with_who_and_when(services: Services) -> None:
    registry = services.registry
    _versions(services, "fraud", 3)
    started = datetime.now(UTC) - timedelta(seconds=5)
    registry.set_alias("fraud", "production", 1, by="user:ana")
    registry.set_alias("fraud", "production", 2, by="key:deployer")
    registry.set_alias("fraud", "production", 2, by="user:ana")  # no move: not recorded
    registry.set_alias("fraud", "staging", 3)
    registry.remove_alias("fraud", "staging", by="user:bo")

    moves = registry.alias_history("fraud", "production")
    assert [(m.from_version, m.to_version, m.moved_by) for m in moves] == [
        (None, 1, "user:ana"),
        (1, 2, "key:deployer"),
    ]
    assert all(m.name == "fraud" and m.alias == "production" for m in moves)
    assert all(started <= m.moved_at <= datetime.now(UTC) for m in moves)
    everything = registry.alias_history("fraud")
    assert [(m.alias, m.from_version, m.to_version) for m in everything] == [
        ("production", None, 1),
        ("production", 1, 2),
        ("staging", None, 3),
        ("staging", 3, None),
    ]
    revisions = [m.revision for m in everything]
    assert revisions == sorted(set(revisions))  # one registry-wide, rising counter


def test_an_alias_given_at_registration_is_recorded(services: Services) -> None:
    register_file(
        services,
        PYTHON_MODELS / "sum.py",
        "fraud",
        format="python",
        trust=True,
        options=RegisterOptions(
            signature=Signature.from_json_file(PYTHON_MODELS / "sum.json"), alias="staging"
        ),
    )
    [move] = services.registry.alias_history("fraud", "staging")
    assert (move.from_version, move.to_version, move.moved_by) == (None, 1, None)


def test_rollback_moves_back_and_forth(services: Services) -> None:
    registry = services.registry
    _versions(services, "fraud", 3)
    registry.set_alias("fraud", "production", 1)
    registry.set_alias("fraud", "production", 3)
    assert registry.previous_version("fraud") == 1

    back = registry.rollback("fraud", by="user:ana")
    assert (back.from_version, back.to_version, back.moved_by) == (3, 1, "user:ana")
    assert _points_at(services, "production") == 1
    # Rolling back a rollback is a roll forward, like `cd -`.
    assert registry.previous_version("fraud") == 3
    assert registry.rollback("fraud").to_version == 3


def test_rollback_restores_a_removed_alias(services: Services) -> None:
    registry = services.registry
    _versions(services, "fraud", 2)
    registry.set_alias("fraud", "canary", 2)
    registry.remove_alias("fraud", "canary")
    assert registry.rollback("fraud", "canary").to_version == 2
    assert _points_at(services, "canary") == 2


def test_nothing_to_roll_back_to(services: Services) -> None:
    registry = services.registry
    _versions(services, "fraud", 2)
    registry.set_alias("fraud", "production", 2)
    assert registry.previous_version("fraud") is None
    with pytest.raises(NoPreviousVersion, match="first set to version 2") as raised:
        registry.rollback("fraud")
    assert raised.value.exit_code == 4
    with pytest.raises(AliasNotFound):
        registry.rollback("fraud", "staging")
    with pytest.raises(ModelNotFound):
        registry.rollback("ghost")
    assert _points_at(services, "production") == 2  # nothing moved


def test_the_migration_records_aliases_that_exist_already(services: Services) -> None:
    """A registry created before the history: its aliases enter it as set by the migration."""
    registry = services.registry
    _versions(services, "fraud", 2)
    registry.set_alias("fraud", "production", 2)
    with registry.engine.begin() as conn:  # back to the schema before 0003 (and later)
        for later in ("alert_events", "alert_states", "leases"):
            conn.execute(text(f"DROP TABLE {later}"))
        conn.execute(text("DROP TABLE predictions"))
        conn.execute(text("DROP TABLE feedback"))
        conn.execute(text("DROP TABLE alias_history"))
        conn.execute(text("DROP TABLE traffic_policies"))
        conn.execute(text("UPDATE alembic_version SET version_num = '0002'"))
    registry.close()
    registry.open()
    [move] = registry.alias_history("fraud", "production")
    assert (move.from_version, move.to_version, move.moved_by) == (None, 2, "migration")
    registry.set_alias("fraud", "production", 1)
    assert registry.rollback("fraud").to_version == 2
