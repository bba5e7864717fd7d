"""Error handling and fallbacks: every production model has a deadline it chose and a
fallback chain or a circuit breaker (``settings/resilience.py``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from servewell.doctor.finding import Finding, failed, passed, warned
from servewell.doctor.latency import latency_budget
from servewell.settings.models import canonical_name

if TYPE_CHECKING:
    from servewell.doctor.context import Context, ServedModel

ITEM = "timeouts and fallbacks"


class ResilienceCheck:
    """A deadline of the model's own, and a fallback or a breaker."""

    item = ITEM

    def run(self, context: Context) -> list[Finding]:
        return [_model_finding(context, model) for model in context.models]


def _model_finding(context: Context, model: ServedModel) -> Finding:
    resilience = model.settings.resilience
    entry = context.settings.models.get(canonical_name(model.name))
    chosen = entry is not None and "timeout_ms" in entry.model_fields_set
    if not resilience.fallbacks and not resilience.breaker.enabled:
        return failed(
            ITEM,
            "no fallback and the circuit breaker is off: a failing model answers 500s",
            f"models: {{{model.name}: {{breaker: {{enabled: true}}, fallbacks: [cache]}}}} "
            "in servewell.yaml",
            model.name,
        )
    guards = []
    if resilience.fallbacks:
        guards.append(f"fallbacks {', '.join(map(str, resilience.fallbacks))}")
    if resilience.breaker.enabled:
        guards.append("circuit breaker")
    if not chosen:
        budget = latency_budget(context, model)
        risk = "not one chosen for it" if budget.slow else "a hung model holds callers that long"
        return warned(
            ITEM,
            f"{' and '.join(guards)}, but the default {resilience.timeout_ms:g} ms deadline: "
            + risk,
            f"models: {{{model.name}: {{timeout_ms: {budget.timeout_ms:g}}}}} in servewell.yaml "
            f"({budget.timeout_ms:g}: {budget.why})",
            model.name,
        )
    return passed(ITEM, f"timeout {resilience.timeout_ms:g} ms; {' and '.join(guards)}", model.name)
