"""Canary rollouts in the registry database: started, read, moved on and ended.

The registry is the rollout's one source of truth, so it survives a server restart and
every replica sees the same one. Each change of state is one conditional UPDATE that
names the state it moves from (the step index, ``running``) with its event INSERTed in
the same transaction: should two processes ever both try the same step, one changes
the row and records the event, the other changes nothing. What the traffic should
look like follows from the row (``registry/rollout_traffic.py`` writes it, idempotently).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Row, insert, select, update

from servewell.core.ref import DEFAULT_ALIAS
from servewell.core.rollout import Bounds, Rollout, RolloutEvent, RolloutState
from servewell.errors import InvalidRollout, RolloutNotFound
from servewell.registry import lookups, schema
from servewell.registry.sql import SqlRegistry
from servewell.registry.traffic import TrafficStore


class RolloutStore:
    """Start, read and move on models' canary rollouts."""

    def __init__(self, registry: SqlRegistry, clock: Callable[[], float] = time.time) -> None:
        self.registry = registry
        self.clock = clock

    def start(
        self,
        name: str,
        candidate: int,
        steps: tuple[int, ...],
        every_s: float,
        bounds: Bounds,
        *,
        by: str | None = None,
    ) -> Rollout:
        """A new running rollout of ``name`` to version ``candidate``, at its first step
        (the split is written by ``rollout_traffic.apply_step``). InvalidRollout while
        another rollout of the model runs or a split set by hand is in place."""
        if not every_s > 0:
            raise InvalidRollout(f"--every must be a positive duration, got {every_s:g} s")
        split = TrafficStore(self.registry).get(name)  # ModelNotFound first

        def begin(conn: Connection) -> int:
            model = lookups.model_id(conn, name)
            lookups.version_id(conn, model, name, candidate)
            _refuse_second(conn, name, model)
            if split is not None and split.arms:
                spelled = " ".join(f"{arm.target}={arm.weight}" for arm in split.arms)
                raise InvalidRollout(
                    f"model '{name}' has a traffic split set by hand ({spelled}); clear it "
                    f"first: servewell traffic clear {name}"
                )
            primary = _primary(conn, name, model, candidate)
            now = self.clock()
            rollout_id = conn.scalar(
                insert(schema.rollouts)
                .values(
                    model_id=model,
                    active_model_id=model,
                    primary_version=primary,
                    candidate_version=candidate,
                    steps=list(steps),
                    every_s=every_s,
                    max_error_rate=bounds.max_error_rate,
                    max_p99_ratio=bounds.max_p99_ratio,
                    min_requests=bounds.min_requests,
                    step_index=0,
                    applied_step=-1,
                    state=RolloutState.RUNNING.value,
                    settled=False,
                    step_started_at=now,
                    next_step_at=now + every_s,
                    started_at=now,
                    started_by=by,
                )
                .returning(schema.rollouts.c.id)
            )
            detail = f"from version {primary} to {candidate}, steps {','.join(map(str, steps))}"
            _event(conn, int(rollout_id), now, "started", steps[0], detail, by)
            return int(rollout_id)

        return self.by_id(self.registry.write(begin))

    def get(self, name: str) -> Rollout:
        """``name``'s latest rollout, running or ended (RolloutNotFound: none ever)."""
        r = schema.rollouts
        with self.registry.read() as conn:
            model = lookups.model_id(conn, name)
            row = conn.execute(
                select(r).where(r.c.model_id == model).order_by(r.c.id.desc()).limit(1)
            ).first()
        if row is None:
            raise RolloutNotFound(name)
        return _to_rollout(name, row)

    def active(self) -> list[Rollout]:
        """Every rollout running, or ended with its traffic not yet settled."""
        r, m = schema.rollouts, schema.models
        with self.registry.read() as conn:
            rows = conn.execute(
                select(r, m.c.name.label("model_name"))
                .join(m, m.c.id == r.c.model_id)
                .where(r.c.active_model_id.is_not(None))
                .order_by(r.c.id)
            ).all()
        return [_to_rollout(row.model_name, row) for row in rows]

    def events(self, rollout: Rollout) -> list[RolloutEvent]:
        e = schema.rollout_events
        with self.registry.read() as conn:
            rows = conn.execute(
                select(e).where(e.c.rollout_id == rollout.id).order_by(e.c.id)
            ).all()
        return [RolloutEvent(row.at, row.kind, row.percent, row.detail, row.by) for row in rows]

    def advance(self, rollout: Rollout, detail: str, *, by: str | None = None) -> bool:
        """Move ``rollout`` from its step to the next, recording why; False when it was
        not at that step and running any more (someone else moved it)."""
        now = self.clock()
        step = rollout.step_index + 1
        changes = {
            "step_index": step,
            "step_started_at": now,
            "next_step_at": now + rollout.every_s,
            "note": None,
        }
        return self._move(rollout, changes, (now, "step", rollout.steps[step], detail, by))

    def end(
        self, rollout: Rollout, state: RolloutState, detail: str, *, by: str | None = None
    ) -> bool:
        """End ``rollout`` (completed, or aborted because of ``detail``); its traffic is
        settled next. False when it was not running at that step any more."""
        now = self.clock()
        changes: dict[str, Any] = {"state": state.value, "ended_at": now, "ended_by": by}
        percent = 100 if state is RolloutState.COMPLETED else 0
        if state is RolloutState.ABORTED:
            changes["reason"] = detail
        return self._move(rollout, changes, (now, state.value, percent, detail, by))

    def wait(self, rollout: Rollout, note: str) -> None:
        """Say why the next step waits (shown by ``rollout status``), when that changed."""
        r = schema.rollouts
        self.registry.write(
            lambda conn: conn.execute(
                update(r)
                .where(r.c.id == rollout.id, r.c.state == RolloutState.RUNNING.value)
                .where((r.c.note.is_(None)) | (r.c.note != note))
                .values(note=note)
            )
        )

    def mark_applied(self, rollout: Rollout) -> None:
        """The split of ``rollout``'s step is in the traffic policy."""
        self._set(rollout, applied_step=rollout.step_index)

    def mark_settled(self, rollout: Rollout) -> None:
        """The ended ``rollout``'s traffic is as it leaves it: the model is free for the next."""
        self._set(rollout, settled=True, active_model_id=None)

    def _move(
        self,
        rollout: Rollout,
        changes: dict[str, Any],
        event: tuple[float, str, int, str, str | None],
    ) -> bool:
        r = schema.rollouts

        def move(conn: Connection) -> bool:
            moved = conn.execute(
                update(r)
                .where(r.c.id == rollout.id, r.c.step_index == rollout.step_index)
                .where(r.c.state == RolloutState.RUNNING.value)
                .values(**changes)
            ).rowcount
            if moved:
                _event(conn, rollout.id, *event)
            return bool(moved)

        return self.registry.write(move)

    def _set(self, rollout: Rollout, **values: Any) -> None:
        r = schema.rollouts
        self.registry.write(
            lambda conn: conn.execute(update(r).where(r.c.id == rollout.id).values(**values))
        )

    def by_id(self, rollout_id: int) -> Rollout:
        """The rollout with that id, as it is now."""
        r, m = schema.rollouts, schema.models
        with self.registry.read() as conn:
            row = conn.execute(
                select(r, m.c.name.label("model_name"))
                .join(m, m.c.id == r.c.model_id)
                .where(r.c.id == rollout_id)
            ).one()
        return _to_rollout(row.model_name, row)


def _refuse_second(conn: Connection, name: str, model: int) -> None:
    r = schema.rollouts
    row = conn.execute(select(r).where(r.c.active_model_id == model)).first()
    if row is not None:
        running = _to_rollout(name, row)
        raise InvalidRollout(
            f"model '{name}' has a rollout to version {running.candidate} "
            f"{running.state.value} (at {running.percent}%); abort it first: "
            f"servewell rollout abort {name}"
        )


def _primary(conn: Connection, name: str, model: int, candidate: int) -> int:
    """The version the model's bare name serves (its production alias, else its
    latest), which must not be the candidate."""
    primary = lookups.alias_version(conn, model, DEFAULT_ALIAS)
    if primary is None:
        v = schema.model_versions
        latest = select(v.c.version).where(v.c.model_id == model).order_by(v.c.version.desc())
        primary = int(conn.scalar(latest.limit(1)) or 0)  # a model has a version
    if primary == candidate:
        raise InvalidRollout(
            f"version {candidate} of model '{name}' already serves its requests; "
            "roll out another version"
        )
    return primary


def _event(
    conn: Connection,
    rollout_id: int,
    at: float,
    kind: str,
    percent: int,
    detail: str,
    by: str | None,
) -> None:
    conn.execute(
        insert(schema.rollout_events).values(
            rollout_id=rollout_id, at=at, kind=kind, percent=percent, detail=detail, by=by
        )
    )


def _to_rollout(name: str, row: Row[Any]) -> Rollout:
    return Rollout(
        id=row.id,
        model=name,
        primary=row.primary_version,
        candidate=row.candidate_version,
        steps=tuple(int(step) for step in row.steps),
        every_s=row.every_s,
        bounds=Bounds(row.max_error_rate, row.max_p99_ratio, row.min_requests),
        step_index=row.step_index,
        state=RolloutState(row.state),
        settled=bool(row.settled),
        applied_step=row.applied_step,
        step_started_at=row.step_started_at,
        next_step_at=row.next_step_at,
        note=row.note,
        reason=row.reason,
        started_at=row.started_at,
        started_by=row.started_by,
        ended_at=row.ended_at,
        ended_by=row.ended_by,
    )
