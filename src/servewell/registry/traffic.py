"""Traffic policies in the registry database: per model one split and/or one shadow.

Every change gives the policy the next registry-wide ``revision``; a cleared policy
stays as an empty row, so the highest revision only ever rises. Serving processes poll
``TrafficStore.revision()`` (one small query, like the key ring's re-read every 0.5 s)
and re-read the policies only when it changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, func, select

from servewell.core.ref import parse_version
from servewell.core.traffic import (
    DEFAULT_STICKY_HEADER,
    Arm,
    Shadow,
    TrafficPolicy,
    check_experiment_id,
    check_header_name,
    check_shadow,
    check_split,
    derived_experiment_id,
)
from servewell.errors import AliasNotFound, InvalidTrafficPolicy
from servewell.registry import lookups, schema
from servewell.registry.database import as_utc
from servewell.registry.sql import SqlRegistry


class RoutingRevision(NamedTuple):
    """Where the registry's routing state stands: unchanged revisions, nothing to re-read."""

    policies: int
    aliases: int


class TrafficStore:
    """Set, read and clear models' traffic policies, checked against the registry."""

    def __init__(self, registry: SqlRegistry) -> None:
        self.registry = registry

    def get(self, name: str) -> TrafficPolicy | None:
        """``name``'s policy, or None when it has none (ModelNotFound when unregistered)."""
        with self.registry.read() as conn:
            row = _row(conn, lookups.model_id(conn, name))
        policy = None if row is None else _to_policy(name, row)
        return None if policy is None or policy.is_empty else policy

    def list(self) -> list[TrafficPolicy]:
        """Every model's policy, by model name."""
        t, m = schema.traffic_policies, schema.models
        with self.registry.read() as conn:
            rows = conn.execute(
                select(t, m.c.name).join(m, m.c.id == t.c.model_id).order_by(m.c.name)
            ).all()
        policies = (_to_policy(row.name, row._asdict()) for row in rows)
        return [policy for policy in policies if not policy.is_empty]

    def revision(self) -> RoutingRevision:
        """The highest policy and alias-move revisions: poll this, re-read on change."""
        policies = select(func.coalesce(func.max(schema.traffic_policies.c.revision), 0))
        aliases = select(func.coalesce(func.max(schema.alias_history.c.revision), 0))
        with self.registry.read() as conn:
            row = conn.execute(select(policies.scalar_subquery(), aliases.scalar_subquery())).one()
        return RoutingRevision(int(row[0]), int(row[1]))

    def check_targets(self, name: str, targets: Sequence[str]) -> None:
        """Refuse targets ``set_split`` (or, one at a time, ``set_shadow``) would refuse:
        a model not registered, a version or alias it does not have, two naming one
        version (a policy declared in the settings is checked so when a server starts)."""
        with self.registry.read() as conn:
            _check_targets(conn, name, lookups.model_id(conn, name), list(targets))

    def set_split(
        self,
        name: str,
        arms: Sequence[Arm],
        *,
        sticky_header: str | None = None,
        experiment_id: str | None = None,
        by: str | None = None,
    ) -> TrafficPolicy:
        """Split ``name``'s requests between ``arms`` (weights add up to 100), keeping its
        shadow. The experiment id stays while the arms' targets do (unless given)."""
        arms = check_split(arms)
        if sticky_header is not None:
            check_header_name(sticky_header)
        if experiment_id is not None:
            check_experiment_id(experiment_id)

        def save(conn: Connection) -> TrafficPolicy:
            model = lookups.model_id(conn, name)
            _check_targets(conn, name, model, [arm.target for arm in arms])
            current = _row(conn, model, lock=True)
            same_targets = current is not None and [a["target"] for a in current["arms"]] == [
                arm.target for arm in arms
            ]
            keep = current["experiment_id"] if current is not None and same_targets else None
            fields = {
                "arms": [{"target": arm.target, "weight": arm.weight} for arm in arms],
                "sticky_header": sticky_header
                or (current["sticky_header"] if current else DEFAULT_STICKY_HEADER),
                "experiment_id": experiment_id or keep or derived_experiment_id(name, arms),
            }
            return _save(conn, name, model, current, fields, by)

        return self.registry.write(save)

    def set_shadow(self, name: str, shadow: Shadow | None, *, by: str | None = None) -> None:
        """Mirror ``shadow.percent`` % of ``name``'s requests to ``shadow.target`` (None:
        stop mirroring), keeping its split."""
        if shadow is not None:
            check_shadow(shadow)

        def save(conn: Connection) -> None:
            model = lookups.model_id(conn, name)
            if shadow is not None:
                _check_targets(conn, name, model, [shadow.target])
            fields = {
                "shadow_target": shadow.target if shadow else None,
                "shadow_percent": float(shadow.percent) if shadow else None,
            }
            _save(conn, name, model, _row(conn, model, lock=True), fields, by)

        self.registry.write(save)

    def clear(self, name: str, *, by: str | None = None) -> TrafficPolicy | None:
        """Remove ``name``'s split and shadow; the policy it had, or None."""
        before = self.get(name)
        if before is None:
            return None

        def save(conn: Connection) -> None:
            model = lookups.model_id(conn, name)
            fields: dict[str, Any] = {"arms": [], "shadow_target": None, "shadow_percent": None}
            _save(conn, name, model, _row(conn, model, lock=True), fields, by)

        self.registry.write(save)
        return before

    def clear_split(self, name: str, *, by: str | None = None) -> None:
        """Remove ``name``'s split, keeping its shadow (a rollout ending)."""

        def save(conn: Connection) -> None:
            model = lookups.model_id(conn, name)
            current = _row(conn, model, lock=True)
            if current is not None and current["arms"]:
                _save(conn, name, model, current, {"arms": []}, by)

        self.registry.write(save)


def _check_targets(conn: Connection, name: str, model: int, targets: list[str]) -> None:
    """Every target names a registered version or an existing alias, and no two name
    the same version (a split that compares a version with itself measures nothing)."""
    seen: dict[int, str] = {}
    for target in targets:
        version = _target_version(conn, name, model, target)
        if version in seen:
            raise InvalidTrafficPolicy(
                f"arms {seen[version]!r} and {target!r} of model '{name}' are both "
                f"version {version}; a split compares different versions"
            )
        seen[version] = target


def _target_version(conn: Connection, name: str, model: int, target: str) -> int:
    number = parse_version(target)
    if number is not None:
        lookups.version_id(conn, model, name, number)
        return number
    version = lookups.alias_version(conn, model, target)
    if version is None:
        raise AliasNotFound(name, target)
    return version


def _row(conn: Connection, model: int, lock: bool = False) -> dict[str, Any] | None:
    t = schema.traffic_policies
    query = select(t).where(t.c.model_id == model)
    if lock:  # PostgreSQL: a concurrent writer of this policy waits, then sees this one
        query = query.with_for_update()
    row = conn.execute(query).first()
    return None if row is None else row._asdict()


def _save(
    conn: Connection,
    name: str,
    model: int,
    current: dict[str, Any] | None,
    fields: dict[str, Any],
    by: str | None,
) -> TrafficPolicy:
    t = schema.traffic_policies
    row = {
        "arms": [],
        "sticky_header": DEFAULT_STICKY_HEADER,
        "shadow_target": None,
        "shadow_percent": None,
        "experiment_id": "",
        **(current or {}),
        **fields,
        "model_id": model,
        "revision": lookups.next_revision(conn, t.c.revision),
        "updated_at": datetime.now(UTC),
        "updated_by": by,
    }
    if not row["arms"]:
        row["experiment_id"] = ""
    if current is None:
        conn.execute(t.insert().values(**row))  # a concurrent insert fails: retried
    else:
        conn.execute(t.update().where(t.c.model_id == model).values(**row))
    return _to_policy(name, row)


def _to_policy(name: str, row: dict[str, Any]) -> TrafficPolicy:
    target, percent = row["shadow_target"], row["shadow_percent"]
    return TrafficPolicy(
        model=name,
        arms=tuple(Arm(arm["target"], int(arm["weight"])) for arm in row["arms"]),
        sticky_header=row["sticky_header"],
        shadow=Shadow(target, float(percent)) if target is not None else None,
        experiment_id=row["experiment_id"],
        revision=int(row["revision"]),
        updated_at=as_utc(row["updated_at"]),
        updated_by=row["updated_by"],
    )
