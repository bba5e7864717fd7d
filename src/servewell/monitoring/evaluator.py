"""One evaluation of every alert rule: each rule's value on its window, fed to its
:class:`~servewell.core.alerting.AlertTracker`, the ``rollback`` action taken, states
and events stored.

A rule watches the version its model's bare name resolves to (``production``, else the
newest), all arms together; when that becomes another version, the episode about the
old one ends (``resolved`` or ``cleared``, noted) and the new one starts afresh. Its
``rollback`` acts when the rule *fires* (once per episode) for the version behind
``production``: the alias moves back to the version it pointed at before
(``registry/alerts.roll_back``: only while it still points at the bad version, and not
within ``rollback_cooldown_s`` of another alert's move of it), and the ``firing``
event's note says what was done.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from servewell.core.alerting import AlertEvent, AlertState, AlertTracker
from servewell.core.ref import DEFAULT_ALIAS, ModelRef
from servewell.errors import ServewellError
from servewell.monitoring.rule_value import rule_value
from servewell.monitoring.summary import GroupReport, summarise
from servewell.monitoring.window import Span
from servewell.registry import RegistryAccess
from servewell.registry.alerts import AlertStore, RuleState, StoredEvent, roll_back
from servewell.settings.monitoring import AlertRule, MonitoringSettings, Window

logger = logging.getLogger(__name__)

#: A window's report, by model and window: rules on the same ones share it.
_Reports = dict[tuple[str, str], tuple[int | None, GroupReport | None]]


class AlertEvaluator:
    """Every configured rule's tracker; :meth:`evaluate` runs one evaluation."""

    def __init__(
        self,
        access: RegistryAccess,
        settings: MonitoringSettings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.access = access
        self.settings = settings
        self.clock = clock
        self.store = AlertStore(access.registry)
        self.trackers = {
            rule.name: AlertTracker(rule, clear_for_s=settings.clear_for_s(rule), clock=clock)
            for rule in settings.alerts
        }
        self.versions: dict[str, int | None] = {}
        """The version each rule was last evaluated on."""
        self.problems: dict[str, str] = {}
        """Why a rule had no window at its last evaluation (warned once, not each time)."""

    def restore(self) -> None:
        """Take the stored states over (after a restart, or from the replica that held
        the ``alerts`` lease before)."""
        for name, stored in self.store.states().items():
            tracker = self.trackers.get(name)
            if tracker is None or stored.model != tracker.rule.model:
                continue  # a rule no longer configured, or now about another model
            tracker.state, tracker.since, tracker.last_bad = (
                stored.state,
                stored.since,
                stored.last_bad,
            )
            self.versions[name] = stored.version

    def evaluate(self, now: float | None = None) -> list[StoredEvent]:
        """Evaluate every rule at ``now`` (the clock's time by default); the events."""
        at = self.clock() if now is None else now
        reports: _Reports = {}
        states: list[RuleState] = []
        events: list[StoredEvent] = []
        for name, tracker in self.trackers.items():
            rule = tracker.rule
            version, group = self._report(rule, at, reports)
            events += self._moved_on(name, version, at)
            value = rule_value(group, rule.metric)
            for event in tracker.observe(value, at):
                events.append(self._act(event, version))
            self.versions[name] = version
            states.append(
                RuleState(
                    name,
                    rule.model,
                    tracker.state,
                    tracker.since,
                    tracker.last_bad,
                    at,
                    value,
                    version,
                )
            )
        self.store.save(states, events)
        return events

    def _moved_on(self, rule: str, version: int | None, at: float) -> list[StoredEvent]:
        """End ``rule``'s episode when its model's watched version is another than the
        one it was about (a rollback, a promotion): the new version starts afresh."""
        before = self.versions.get(rule)
        if version is None or before is None or version == before:
            return []
        ended = self.trackers[rule].end(at)
        if ended is None:
            return []
        return [StoredEvent(ended, before, f"production moved from v{before} to v{version}")]

    def _report(
        self, rule: AlertRule, at: float, reports: _Reports
    ) -> tuple[int | None, GroupReport | None]:
        key = (rule.model, str(rule.window))
        if key not in reports:
            try:
                reports[key] = self._window(rule.model, rule.window, at)
            except ServewellError as exc:  # an unknown model, a registry down: no data
                self._warn(rule.name, exc.message)
                reports[key] = (None, None)
            else:
                self.problems.pop(rule.name, None)
        return reports[key]

    def _window(self, model: str, window: Window, at: float) -> tuple[int, GroupReport | None]:
        """The watched version of ``model`` and its report over ``window`` (its arms
        merged), None without a logged row."""
        from servewell.monitoring.run import monitor  # the training stack: not at start-up

        version = self.access.registry.resolve(ModelRef(model)).version
        span = Span(window, datetime.fromtimestamp(at, UTC), slices=1)
        groups = monitor(self.access, model, span, version=version).groups
        if not groups:
            return version, None
        if len(groups) == 1:
            return version, groups[0]
        return version, summarise(version, None, [group.window for group in groups], model)

    def _act(self, event: AlertEvent, version: int | None) -> StoredEvent:
        """The event as stored, after the rule's action (a firing ``rollback`` rule)."""
        if event.kind != "firing" or event.action != "rollback" or version is None:
            return StoredEvent(event, version)
        try:
            done = roll_back(
                self.access.registry,
                event.model,
                DEFAULT_ALIAS,
                version,
                event.rule,
                self.settings.rollback_cooldown_s,
            )
        except ServewellError as exc:
            return StoredEvent(event, version, f"rollback failed: {exc.message}")
        return StoredEvent(event, version, done.note)

    def _warn(self, rule: str, problem: str) -> None:
        if self.problems.get(rule) != problem:
            logger.warning("alert rule %s is not evaluated: %s", rule, problem)
        self.problems[rule] = problem

    def firing(self) -> list[str]:
        """The rules firing now."""
        return [n for n, t in self.trackers.items() if t.state is AlertState.FIRING]
