"""A whole load test: its plan (steps, duration, ramp, SLO), running the steps one after
another on one event loop, and the result (per-step figures, SLO checks, verdict).

``on_tick`` is called about once a second with the running step's label, the second's
timeline point and the step's recorder, for a live view; it must return quickly.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from servewell.loadtest.bodies import RequestSet
from servewell.loadtest.client import Target
from servewell.loadtest.schedule import Phases, Step, run_step
from servewell.loadtest.slo import Check, Objective, judge
from servewell.loadtest.stats import StepRecorder, StepResult, step_result

TICK_S = 1.0

OnTick = Callable[[str, dict[str, float], StepRecorder], None]


@dataclass(frozen=True)
class Plan:
    """What to run: the steps in order, the SLO and the per-request timeout."""

    steps: list[Step]
    objectives: list[Objective] = field(default_factory=list)
    slo: str = ""
    timeout_s: float = 30.0


@dataclass(frozen=True)
class LoadTestResult:
    """What ran and how it went."""

    started_at: datetime
    duration_s: float
    steps: list[StepResult]
    checks: list[Check]
    sent: int
    """Every request sent, ramps included (what the server's counters saw)."""
    ramp_invalid_not_4xx: int = 0

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks) and self.ramp_invalid_not_4xx == 0

    def answered_version(self) -> str | None:
        """The version that answered most requests (``X-Servewell-Version``)."""
        counts: dict[str, int] = {}
        for step in self.steps:
            for version, n in step.versions.items():
                counts[version] = counts.get(version, 0) + n
        return max(counts, key=lambda v: counts[v]) if counts else None

    def summary(self) -> dict[str, Any]:
        """The steps' figures without their histograms and timelines (the registry's)."""
        heavy = ("histogram", "timeline")
        steps = [{k: v for k, v in step.to_dict().items() if k not in heavy} for step in self.steps]
        return {"steps": steps, "sent": self.sent, "checks": [c.to_dict() for c in self.checks]}


def run_load_test(
    plan: Plan, target: Target, requests: RequestSet, on_tick: OnTick | None = None
) -> LoadTestResult:
    """Run every step of ``plan`` against ``target`` (on uvloop when installed)."""
    try:
        import uvloop

        return uvloop.run(_run(plan, target, requests, on_tick))
    except ImportError:  # pragma: no cover - uvloop is a dependency of the server
        return asyncio.run(_run(plan, target, requests, on_tick))


async def _run(
    plan: Plan, target: Target, requests: RequestSet, on_tick: OnTick | None
) -> LoadTestResult:
    started_at = datetime.now(UTC)
    began = time.perf_counter()
    results, sent, ramp_wrong = [], 0, 0
    for step in plan.steps:
        phases = await _run_one(step, target, requests, plan.timeout_s, on_tick)
        results.append(step_result(phases.measured, step.target, step.duration_s))
        ramp_wrong += step_result(phases.ramp, step.target, step.ramp_s or 1.0).invalid_not_4xx
        sent += phases.sent
    return LoadTestResult(
        started_at=started_at,
        duration_s=time.perf_counter() - began,
        steps=results,
        checks=judge(plan.objectives, results),
        sent=sent,
        ramp_invalid_not_4xx=ramp_wrong,
    )


async def _run_one(
    step: Step, target: Target, requests: RequestSet, timeout_s: float, on_tick: OnTick | None
) -> Phases:
    now = time.perf_counter()
    phases = Phases(
        ramp=StepRecorder(step.label, now),
        measured=StepRecorder(step.label, now + step.ramp_s),
        measure_from=now + step.ramp_s,
    )
    ticker = asyncio.create_task(_tick(step, phases, on_tick))
    try:
        await run_step(step, target, requests, phases, timeout_s)
    finally:
        ticker.cancel()
    end = time.perf_counter()
    phases.ramp.flush(end)
    phases.measured.flush(end)
    return phases


async def _tick(step: Step, phases: Phases, on_tick: OnTick | None) -> None:
    while True:
        await asyncio.sleep(TICK_S)
        now = time.perf_counter()
        recorder = phases.measured if now >= phases.measure_from else phases.ramp
        point = recorder.flush(now)
        if on_tick is not None:
            on_tick(step.label, point, recorder)
