"""What a rollout's state means for the model's traffic, written to the registry:
the split of its step while it runs; once completed, the production alias on the
candidate and no split; once aborted, no split. Each write checks what is there first,
so writing it twice (after a crash in between, or by two processes) changes nothing
more, and a completed rollout's alias move is recorded once, by ``rollout``.
"""

from __future__ import annotations

from servewell.core.ref import DEFAULT_ALIAS, ModelRef
from servewell.core.rollout import Rollout, RolloutState
from servewell.core.traffic import Arm
from servewell.errors import AliasNotFound
from servewell.registry.rollouts import RolloutStore
from servewell.registry.traffic import TrafficStore

#: Who the traffic changes and alias moves a rollout makes are recorded as.
ROLLOUT_BY = "rollout"


def step_arms(rollout: Rollout) -> list[Arm]:
    """The split of ``rollout``'s step: the primary keeps what the candidate does not have."""
    percent = rollout.steps[rollout.step_index]
    return [Arm(str(rollout.primary), 100 - percent), Arm(str(rollout.candidate), percent)]


def apply_step(store: RolloutStore, rollout: Rollout) -> None:
    """Write the split of ``rollout``'s step, unless it is there already."""
    traffic = TrafficStore(store.registry)
    policy = traffic.get(rollout.model)
    arms = step_arms(rollout)
    if policy is None or list(policy.arms) != arms:
        traffic.set_split(rollout.model, arms, by=ROLLOUT_BY)
    store.mark_applied(rollout)
    now = store.by_id(rollout.id)
    if now.state is not RolloutState.RUNNING:  # aborted meanwhile: undo what was written
        settle(store, now)


def settle(store: RolloutStore, rollout: Rollout) -> None:
    """Leave the traffic as the ended ``rollout`` says, then free the model."""
    if rollout.state is RolloutState.RUNNING:
        raise ValueError(f"rollout {rollout.id} of {rollout.model} is still running")
    registry = store.registry
    if rollout.state is RolloutState.COMPLETED:
        production = ModelRef(rollout.model, alias=DEFAULT_ALIAS)
        try:
            current: int | None = registry.resolve(production).version
        except AliasNotFound:
            current = None
        if current != rollout.candidate:
            registry.set_alias(rollout.model, DEFAULT_ALIAS, rollout.candidate, by=ROLLOUT_BY)
    TrafficStore(registry).clear_split(rollout.model, by=ROLLOUT_BY)
    store.mark_settled(rollout)
