"""Whether a change an operator is about to store leaves room in the memory budget: the
CLI's check before ``alias set``, ``rollback``, ``traffic split`` and ``traffic shadow``
(exit 10, nothing stored), made from the registry alone, before any server sees it.

The served set is what a server with these settings holds: ``server.models`` (every
registered model when empty), each reference resolved, plus the versions its models'
traffic policies name. A change needs room only for the versions it adds to that set,
beside every version in it now (a server loads the new ones while the old ones still
serve), each counted by its estimate (``serving/budget.py``), against the budget these
settings give (``server.memory_budget_mb``, else a share of *this* machine's memory:
set it when the command runs elsewhere than the servers). The servers check again
when they load: this check spares a move they would refuse.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from servewell.core.ref import DEFAULT_ALIAS, ModelRef
from servewell.core.traffic import Target, TrafficPolicy
from servewell.errors import NotFound, OverMemoryBudget
from servewell.registry import ModelVersion, RegistryAccess
from servewell.registry.traffic import TrafficStore
from servewell.serving.budget import budget_bytes, estimate
from servewell.serving.pool import served_references

Served = dict[tuple[str, int], ModelVersion]


@dataclass(frozen=True, slots=True)
class Change:
    """What a command is about to store for one model."""

    model: str
    alias: tuple[str, int] | None = None
    """An alias and the version it moves to."""
    targets: tuple[Target, ...] | None = None
    """Every target of the model's traffic policy afterwards (arms and shadow)."""


def check_headroom(access: RegistryAccess, change: Change) -> None:
    """OverMemoryBudget when the versions ``change`` adds to the served set do not fit
    beside the ones it holds now (registry I/O)."""
    limit = budget_bytes(access.settings)
    if limit is None:
        return
    refs = served_references(access, [ModelRef.parse(t) for t in access.settings.server.models])
    now = _served(access, refs, None)
    added = [v for key, v in _served(access, refs, change).items() if key not in now]
    if not added:
        return
    held = sum(estimate(access.settings, version).size_bytes for version in now.values())
    needed = sum(estimate(access.settings, version).size_bytes for version in added)
    if held + needed > limit:
        first = added[0]
        raise OverMemoryBudget(
            first.name, first.version, needed, held, limit, outcome="nothing was changed"
        )


def policy_targets(policy: TrafficPolicy | None) -> tuple[Target, ...]:
    """The versions and aliases ``policy`` sends requests to (arms, then its shadow)."""
    if policy is None:
        return ()
    shadow = () if policy.shadow is None else (policy.shadow,)
    return (*policy.arms, *shadow)


def _served(access: RegistryAccess, refs: Sequence[ModelRef], change: Change | None) -> Served:
    """The versions the served set holds, with ``change`` stored (None: as it is)."""
    served: Served = {}
    for ref in _with_policies(access, refs, change):
        try:
            version = _resolve(access, ref, change)
        except NotFound:  # a server would not serve it either
            continue
        served[(version.name, version.version)] = version
    return served


def _with_policies(
    access: RegistryAccess, refs: Sequence[ModelRef], change: Change | None
) -> list[ModelRef]:
    """``refs`` and the references their models' traffic policies name."""
    policies = {policy.model: policy for policy in TrafficStore(access.registry).list()}
    named = list(refs)
    for model in dict.fromkeys(ref.name for ref in refs):
        targets = policy_targets(policies.get(model))
        if change is not None and change.model == model and change.targets is not None:
            targets = change.targets
        named += [target.ref(model) for target in targets]
    return named


def _resolve(access: RegistryAccess, ref: ModelRef, change: Change | None) -> ModelVersion:
    """The version ``ref`` names, with ``change``'s alias move applied (a bare name
    follows its production alias)."""
    if change is not None and change.alias is not None and ref.version is None:
        alias, version = change.alias
        if ref.name == change.model and (ref.alias or DEFAULT_ALIAS) == alias:
            return access.registry.get_version(ref.name, version)
    return access.registry.resolve(ref)
