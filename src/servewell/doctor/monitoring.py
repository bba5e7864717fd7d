"""Monitoring: the prediction log keeps the model's predictions, a reference profile to
judge drift against, and at least one alert rule watching it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from servewell.doctor.finding import Finding, failed, passed
from servewell.doctor.latency import latency_budget
from servewell.registry.attachments import PROFILE_ROLE

if TYPE_CHECKING:
    from servewell.doctor.context import Context, ServedModel

ITEM = "monitoring"


class MonitoringCheck:
    """Prediction log on, a reference profile, an alert rule, for each model."""

    item = ITEM

    def run(self, context: Context) -> list[Finding]:
        findings = []
        for model in context.models:
            findings.extend(_model_findings(context, model))
        return findings


def _model_findings(context: Context, model: ServedModel) -> list[Finding]:
    rate = model.settings.monitoring.sample_rate
    findings = [
        passed(f"{ITEM}: prediction log", f"logs {rate:.0%} of its predictions", model.name)
        if rate > 0
        else failed(
            f"{ITEM}: prediction log",
            "monitoring.sample_rate is 0: no prediction is logged",
            f"models: {{{model.name}: {{monitoring: {{sample_rate: 1.0}}}}}} in servewell.yaml",
            model.name,
        )
    ]
    version = model.production
    if version is not None and not version.has_artifact(PROFILE_ROLE):
        findings.append(
            failed(
                f"{ITEM}: reference profile",
                f"{version.name}@{version.version} has no reference profile: drift has "
                "nothing to be judged against",
                f"servewell profile {version.name} <its inputs.csv> --version {version.version}",
                model.name,
            )
        )
    elif version is not None:
        findings.append(passed(f"{ITEM}: reference profile", PROFILE_ROLE, model.name))
    findings.append(_alerts(context, model))
    return findings


def _alerts(context: Context, model: ServedModel) -> Finding:
    rules = [rule.name for rule in context.settings.monitoring.alerts if rule.model == model.name]
    if rules:
        return passed(f"{ITEM}: alert rules", ", ".join(rules), model.name)
    budget = latency_budget(context, model)
    fix = (
        f"monitoring: {{alerts: [{{name: {model.name}-latency, model: {model.name}, "
        f"metric: p99_latency_ms, op: '>', threshold: {budget.alert_ms:g}, window: 15m}}]}} "
        "in servewell.yaml"
    )
    if budget.alert_why:
        fix += f" ({budget.alert_ms:g} ms: {budget.alert_why})"
    return failed(f"{ITEM}: alert rules", "no alert rule watches it", fix, model.name)
