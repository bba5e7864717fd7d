"""An alert rule's state over time: pure, on an injected clock; what it emits is stored
and sent by others.

Every evaluation of a rule is a *sample*: **bad** (the condition ``value op threshold``
holds), **good** (it does not) or **none** (no value: nothing in the window yet, no
labels, a NaN). With ``for`` = F and ``clear_for`` = C (default: two evaluation
intervals, :meth:`~servewell.settings.monitoring.MonitoringSettings.clear_for_s`):

- **An episode** starts at a bad sample while the rule is inactive (or resolved): the
  rule is *pending* from then (``since``), event ``pending``.
- **It fires** at the first bad sample at least F after ``since``: *firing*, event
  ``firing`` (F = 0: at the first bad sample, both events at once). A good sample
  never fires it, however long the episode has run: it fires on evidence.
- **Good samples within C of the last bad one change nothing.** "Holds continuously"
  means no stretch of C without a bad sample, so one good evaluation between bad ones
  (at the regular interval) neither resets a pending rule nor resolves a firing one,
  unlike Prometheus, whose pending state resets at the first good evaluation.
- **It ends** at a good sample at least C after the last bad one: a pending rule goes
  back to *inactive* (event ``cleared``), a firing one to *resolved* (event
  ``resolved``). Each episode fires and resolves at most once.
- **None samples never resolve a firing rule**: missing data is not a recovery (a
  ``label_coverage`` rule is the way to page on missing labels). A pending rule whose
  last bad sample is C old at a none sample is cleared, though: it can no longer be
  said to hold continuously, and two bad samples a day apart are no sustained problem.

- **What it watches changed** (:meth:`AlertTracker.end`: its model's ``production``
  moved to another version, by a person or by the rule's own rollback): the episode
  ends at once, as ``cleared`` or ``resolved``; the new version starts afresh.

So one bad sample pages no one (with F > 0, it clears after C of good ones), a real
problem is not reset by one good sample, and an alert that fired stays firing until
the condition has been false for C. A clock that steps back is held at its latest
reading.
"""

from __future__ import annotations

import math
import operator
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from servewell.settings.monitoring import AlertRule

EventKind = Literal["pending", "firing", "resolved", "cleared"]

_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}


class AlertState(StrEnum):
    INACTIVE = "inactive"
    PENDING = "pending"
    FIRING = "firing"
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """One change of a rule's state, as a sink or the event table records it."""

    rule: str
    model: str
    metric: str
    kind: EventKind
    at: float
    """Clock time of the evaluation that changed the state."""
    since: float
    """When the episode began (its first bad sample)."""
    value: float | None
    threshold: float
    op: str
    severity: str
    action: str

    def to_dict(self) -> dict[str, object]:
        return {
            "rule": self.rule,
            "model": self.model,
            "metric": self.metric,
            "kind": self.kind,
            "at": self.at,
            "since": self.since,
            "value": self.value,
            "threshold": self.threshold,
            "op": self.op,
            "severity": self.severity,
            "action": self.action,
        }


class AlertTracker:
    """One rule's state machine: feed it each evaluation's value with :meth:`observe`."""

    def __init__(
        self, rule: AlertRule, *, clear_for_s: float, clock: Callable[[], float] = time.time
    ) -> None:
        self.rule = rule
        self.clear_for_s = clear_for_s
        self.clock = clock
        self.state = AlertState.INACTIVE
        self.since: float | None = None
        """When the current episode began; None between episodes."""
        self.last_bad: float | None = None
        self._latest = -math.inf

    def is_bad(self, value: float | None) -> bool | None:
        """Whether the rule's condition holds for ``value`` (None: no data)."""
        if value is None or math.isnan(value):
            return None
        return _COMPARE[self.rule.op](value, self.rule.threshold)

    def observe(self, value: float | None, now: float | None = None) -> list[AlertEvent]:
        """One evaluation: the events it causes (none, one, or pending and firing)."""
        at = max(self.clock() if now is None else now, self._latest)
        self._latest = at
        bad = self.is_bad(value)
        if bad:
            return self._bad(at, value)
        if bad is None and self.state is AlertState.FIRING:
            return []
        return self._not_bad(at, value)

    def _bad(self, at: float, value: float | None) -> list[AlertEvent]:
        events: list[AlertEvent] = []
        if self.state in (AlertState.INACTIVE, AlertState.RESOLVED):
            self.state, self.since = AlertState.PENDING, at
            events.append(self._event("pending", at, value))
        self.last_bad = at
        assert self.since is not None
        if self.state is AlertState.PENDING and at - self.since >= self.rule.for_s:
            self.state = AlertState.FIRING
            events.append(self._event("firing", at, value))
        return events

    def _not_bad(self, at: float, value: float | None) -> list[AlertEvent]:
        """A good sample (or, while pending, a none one): the end of the episode once
        C has passed since its last bad sample."""
        if self.state not in (AlertState.PENDING, AlertState.FIRING):
            return []
        if not self._quiet_since_bad(at):
            return []
        return [self._ended(at, value)]

    def end(self, now: float | None = None) -> AlertEvent | None:
        """End the episode now, whatever ``clear_for`` says, because what the rule
        watches changed (its model's ``production`` moved to another version): the
        ``cleared`` or ``resolved`` event, None when there was no episode."""
        if self.state not in (AlertState.PENDING, AlertState.FIRING):
            return None
        at = max(self.clock() if now is None else now, self._latest)
        self._latest = at
        return self._ended(at, None)

    def _ended(self, at: float, value: float | None) -> AlertEvent:
        kind: EventKind = "cleared" if self.state is AlertState.PENDING else "resolved"
        event = self._event(kind, at, value)
        self.state = AlertState.INACTIVE if kind == "cleared" else AlertState.RESOLVED
        self.since = self.last_bad = None
        return event

    def _quiet_since_bad(self, at: float) -> bool:
        return self.last_bad is None or at - self.last_bad >= self.clear_for_s

    def _event(self, kind: EventKind, at: float, value: float | None) -> AlertEvent:
        rule = self.rule
        return AlertEvent(
            rule=rule.name,
            model=rule.model,
            metric=str(rule.metric),
            kind=kind,
            at=at,
            since=self.since if self.since is not None else at,
            value=value,
            threshold=rule.threshold,
            op=rule.op,
            severity=rule.severity,
            action=rule.action,
        )
