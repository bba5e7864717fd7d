"""A model's traffic policy: a weighted split between versions or aliases, a shadow.

Pure shapes and their checks; the registry stores them (``registry/traffic.py``) and
``core/assignment.py`` picks an arm. Weights are whole percentages that add up to 100,
so an arm's weight *is* its share: what the user typed is what ``traffic show`` prints.

A policy is stored in the registry (``servewell traffic``) or declared in the settings
(``traffic.<model>`` in ``servewell.yaml``): :func:`active_policies` says which one a
server follows, the same way in every process that reads the same file.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, TypeVar

from servewell.core.ref import ModelRef, check_alias, parse_version
from servewell.errors import InvalidConfig, InvalidReference, InvalidTrafficPolicy
from servewell.settings.traffic import DeclaredTraffic

#: The header whose value makes assignment sticky, unless the policy names another.
DEFAULT_STICKY_HEADER = "X-User-ID"
TOTAL_WEIGHT = 100

_HEADER = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}\Z")
_EXPERIMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Target:
    """What a policy sends requests to: a version number ("2") or an alias ("canary"),
    as written."""

    target: str

    @property
    def version(self) -> int | None:
        return parse_version(self.target)

    @property
    def alias(self) -> str | None:
        return None if self.version is not None else self.target

    def ref(self, model: str) -> ModelRef:
        """The reference to ``model``'s version or alias this target names."""
        return ModelRef(model, version=self.version, alias=self.alias)


@dataclass(frozen=True, slots=True)
class Arm(Target):
    """One side of a split, and its share of the requests."""

    weight: int

    @classmethod
    def parse(cls, text: str) -> Arm:
        """``"2=90"`` or ``"canary=10"``."""
        target, sep, weight = text.strip().rpartition("=")
        if not sep or not target:
            raise InvalidTrafficPolicy(
                f"arm {text!r} should read TARGET=WEIGHT, e.g. 2=90 or canary=10"
            )
        if not (weight.isascii() and weight.isdigit()):
            raise InvalidTrafficPolicy(
                f"arm {text!r}: the weight must be a whole percentage, got {weight!r}"
            )
        return cls(check_target(target), int(weight))


@dataclass(frozen=True, slots=True)
class Shadow(Target):
    """A share of requests also sent to ``target``; the caller gets only the primary's answer."""

    percent: float


@dataclass(frozen=True, slots=True)
class TrafficPolicy:
    """What the registry holds for one model: at least a split or a shadow."""

    model: str
    arms: tuple[Arm, ...]
    """Empty: no split (requests resolve as without a policy)."""
    sticky_header: str
    shadow: Shadow | None
    experiment_id: str
    """Sticky assignment hashes (experiment id, user id): a new id reshuffles users."""
    revision: int
    """Rises with every change of any model's policy (``TrafficStore.revision``)."""
    updated_at: datetime
    """When it was last changed (declared in a file: the file's modification time)."""
    updated_by: str | None
    declared_in: str | None = None
    """The settings file that declares it (None: set with ``servewell traffic``)."""
    file_wins: bool = False
    """Declared with ``source: file``: the registry's policy for the model is ignored,
    and ``servewell traffic`` refuses to change it."""

    @property
    def source(self) -> Literal["registry", "file"]:
        """Where it comes from: the registry or the settings file."""
        return "registry" if self.declared_in is None else "file"

    @property
    def targets(self) -> list[str]:
        """The arms' targets, in order."""
        return [arm.target for arm in self.arms]

    @property
    def is_empty(self) -> bool:
        return not self.arms and self.shadow is None

    def share(self, arm: Arm) -> float:
        """The fraction of requests ``arm`` gets (weights add up to 100)."""
        return arm.weight / TOTAL_WEIGHT


def check_target(target: str) -> str:
    """A version number or an alias name, with the reason when it is neither."""
    if parse_version(target) is not None:
        return target
    if target.isascii() and target.isdigit():
        raise InvalidTrafficPolicy(f"arm target {target!r} is not a version number (1 or more)")
    try:
        return check_alias(target)
    except InvalidReference as exc:
        raise InvalidTrafficPolicy(
            f"arm target {target!r} is neither a version number nor an alias name "
            "(letters, digits, '.', '_' or '-', starting with a letter)"
        ) from exc


def check_split(arms: Sequence[Arm]) -> tuple[Arm, ...]:
    """Arms with distinct targets and positive whole weights that add up to 100."""
    if not arms:
        raise InvalidTrafficPolicy("a split needs at least one arm, e.g. 2=90 3=10")
    seen: set[str] = set()
    for arm in arms:
        check_target(arm.target)
        if arm.target in seen:
            raise InvalidTrafficPolicy(f"arm {arm.target!r} is named twice")
        seen.add(arm.target)
        if arm.weight <= 0:
            raise InvalidTrafficPolicy(
                f"arm {arm.target!r} has weight {arm.weight}; weights are positive whole "
                "percentages (remove an arm instead of giving it 0)"
            )
    total = sum(arm.weight for arm in arms)
    if total != TOTAL_WEIGHT:
        spelled = " ".join(f"{arm.target}={arm.weight}" for arm in arms)
        raise InvalidTrafficPolicy(
            f"weights must add up to {TOTAL_WEIGHT}; {spelled} adds up to {total}"
        )
    return tuple(arms)


def check_shadow(shadow: Shadow) -> Shadow:
    check_target(shadow.target)
    if not 0 <= shadow.percent <= 100:  # NaN fails this too
        raise InvalidTrafficPolicy(
            f"the shadow percentage must be between 0 and 100, got {shadow.percent:g}"
        )
    return shadow


def check_header_name(name: str) -> str:
    if not _HEADER.match(name):
        raise InvalidTrafficPolicy(
            f"sticky header {name!r} is not an HTTP header name (1-64 letters, digits or "
            "-, e.g. X-User-ID)"
        )
    return name


def check_experiment_id(experiment_id: str) -> str:
    if not _EXPERIMENT.match(experiment_id):
        raise InvalidTrafficPolicy(
            f"experiment id {experiment_id!r} must be 1-64 letters, digits, '.', '_' or '-'"
        )
    return experiment_id


def derived_experiment_id(model: str, arms: Sequence[Arm]) -> str:
    """The id a split gets unless one is given: the same model and targets in the same
    order give the same id on every machine (weights are not part of it, so moving a
    weight moves only the users near the boundary between arms). The model is part of
    it, so two models' splits do not put the same users on their second arms."""
    spelled = "\0".join([model, *(arm.target for arm in arms)])
    return f"exp-{hashlib.sha256(spelled.encode()).hexdigest()[:12]}"


def declared_policy(
    model: str, declared: DeclaredTraffic, where: str, updated_at: datetime
) -> TrafficPolicy:
    """``traffic.<model>`` of the settings (read from ``where``) as a policy, checked as
    ``servewell traffic`` checks one; what is wrong is one InvalidConfig naming the key."""

    def checked(key: str, check: Callable[[], T]) -> T:
        try:
            return check()
        except InvalidTrafficPolicy as exc:
            raise InvalidConfig(
                f"invalid settings ({where}): traffic.{model}.{key}: {exc.message}"
            ) from None

    arms: tuple[Arm, ...] = ()
    if declared.split:
        split = [Arm(target, weight) for target, weight in declared.split.items()]
        arms = checked("split", lambda: check_split(split))
    header, experiment = declared.sticky_header, declared.experiment
    if header is not None:
        checked("sticky_header", lambda: check_header_name(header))
    if experiment is not None:
        checked("experiment", lambda: check_experiment_id(experiment))
    shadow = None
    if declared.shadow is not None:
        wanted = Shadow(declared.shadow.version, declared.shadow.percent)
        shadow = checked("shadow", lambda: check_shadow(wanted))
    return TrafficPolicy(
        model=model,
        arms=arms,
        sticky_header=header or DEFAULT_STICKY_HEADER,
        shadow=shadow,
        experiment_id=(experiment or derived_experiment_id(model, arms)) if arms else "",
        revision=0,
        updated_at=updated_at,
        updated_by=f"file:{where}",
        declared_in=where,
        file_wins=declared.owned_by_file,
    )


def active_policies(
    stored: Iterable[TrafficPolicy], declared: Mapping[str, TrafficPolicy]
) -> dict[str, TrafficPolicy]:
    """Per model, the policy servers follow: a declared one with ``source: file``, else
    the registry's, else a declared one (which applies while the registry holds none);
    a model whose policy is empty has none."""
    active = dict(declared)
    for policy in stored:
        found = declared.get(policy.model)
        if (found is None or not found.file_wins) and not policy.is_empty:
            active[policy.model] = policy
    return {model: policy for model, policy in active.items() if not policy.is_empty}
