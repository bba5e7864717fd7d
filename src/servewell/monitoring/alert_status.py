"""The alert rules with their stored state and recent events: what ``servewell alerts``
prints and the dashboard's Monitoring page shows (one reading for both)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from servewell.registry import RegistryAccess
from servewell.registry.alerts import AlertStore, RuleState
from servewell.settings.monitoring import AlertRule

#: Events listed, newest first.
RECENT_EVENTS = 20
#: Said of a rule on a metric the prediction log does not hold (``error_rate``).
NOT_EVALUATED = "not in the prediction log: evaluated by Prometheus (export-prometheus)"


@dataclass(frozen=True, slots=True)
class AlertStatus:
    rules: list[dict[str, Any]]
    """Each rule of ``monitoring.alerts`` with its state (``inactive`` before any)."""
    events: list[dict[str, Any]]
    """The newest events, newest first."""

    def to_dict(self) -> dict[str, Any]:
        return {"rules": self.rules, "events": self.events}


def alert_status(
    access: RegistryAccess, model: str | None = None, limit: int = RECENT_EVENTS
) -> AlertStatus:
    """The rules (of ``model`` when given) with the state the evaluating server stored,
    and their newest ``limit`` events."""
    store = AlertStore(access.registry)
    states = store.states()
    events = store.events(model=model, limit=limit)
    rules = [rule for rule in access.settings.monitoring.alerts if model in (None, rule.model)]
    return AlertStatus(
        [rule_status(rule, states.get(rule.name)) for rule in rules],
        [event.to_dict() for event in events],
    )


def rule_status(rule: AlertRule, state: RuleState | None) -> dict[str, Any]:
    """One rule's settings and stored state."""
    from servewell.monitoring.rule_value import EVALUATED

    return {
        "name": rule.name,
        "model": rule.model,
        "condition": f"{rule.metric} {rule.op} {rule.threshold}",
        "window": str(rule.window),
        "for_s": rule.for_s,
        "severity": rule.severity,
        "action": rule.action,
        "state": "inactive" if state is None else str(state.state),
        "since": None if state is None else state.since,
        "value": None if state is None else state.value,
        "version": None if state is None else state.version,
        "evaluated_at": None if state is None else state.evaluated_at,
        "note": None if rule.metric.name in EVALUATED else NOT_EVALUATED,
    }
