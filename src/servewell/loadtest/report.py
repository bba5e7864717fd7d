"""A load test's JSON document: what ran (server, model, version, protocol, settings,
SLO), every step's figures with its histogram and timeline, the SLO checks and the
verdict. ``--json`` writes it; the HTML page (``reports/loadtest_page.py``) draws it;
the registry keeps it without the histograms and timelines."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from servewell.loadtest.run import LoadTestResult, Plan


@dataclass(frozen=True)
class RunContext:
    """What a result does not know itself: where it ran and what was asked."""

    url: str
    model: str
    protocol: str
    bodies: str
    """Where the bodies came from: ``registry`` (profile rows), ``metadata`` (drawn from
    the signature) or ``file``."""
    rows_per_request: int
    invalid_share: float
    probe_requests: int = 1
    """Requests sent before the load to learn which version answers (not in ``sent``)."""


def plan_settings(plan: Plan, context: RunContext) -> dict[str, Any]:
    """The settings that ran, as the registry records them."""
    steps = plan.steps
    first = steps[0]
    load: dict[str, Any] = (
        {"concurrency": [step.concurrency for step in steps]}
        if first.concurrency is not None
        else {"rate_per_s": first.rate_per_s}
    )
    return {
        **load,
        "duration_s": first.duration_s,
        "ramp_s": first.ramp_s,
        "rows_per_request": context.rows_per_request,
        "invalid_share": context.invalid_share,
        "bodies": context.bodies,
        "url": context.url,
        "timeout_s": plan.timeout_s,
    }


def to_document(
    result: LoadTestResult, plan: Plan, context: RunContext, version: int | None
) -> dict[str, Any]:
    return {
        "url": context.url,
        "model": context.model,
        "version": version,
        "protocol": context.protocol,
        "started_at": result.started_at.isoformat(),
        "duration_s": result.duration_s,
        "settings": plan_settings(plan, context),
        "slo": plan.slo,
        "passed": result.passed,
        "sent": result.sent,
        "probe_requests": context.probe_requests,
        "ramp_invalid_not_4xx": result.ramp_invalid_not_4xx,
        "steps": [step.to_dict() for step in result.steps],
        "checks": [check.to_dict() for check in result.checks],
    }
