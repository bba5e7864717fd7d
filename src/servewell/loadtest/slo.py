"""Service-level objectives a load test is judged by: ``"p99<50ms,errors<0.1%"``.

Each objective is a latency quantile (``p50``, ``p90``, ``p99``, ``p99.9``, ``max``)
below a duration (``us``, ``ms``, ``s``), ``errors`` below a share (``0.1%`` or
``0.001``), or ``rps`` above a throughput. Every step must meet every objective; and
whatever the SLO (none included), a deliberately invalid body answered with anything but
a 4xx fails, and so does a step with requests the server never answered (refused or
dropped connections, timeouts: status ``0``): a server that stops answering never
passes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from servewell.errors import InvalidInput
from servewell.loadtest.stats import NO_ANSWER, QUANTILES, StepResult

_OBJECTIVE = re.compile(r"^(p50|p90|p99|p99\.9|max|errors|rps)\s*([<>])\s*([0-9.]+)\s*([a-z%/]*)$")
_LATENCY_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}
_LATENCIES = (*QUANTILES, "max")


@dataclass(frozen=True, slots=True)
class Objective:
    """One bound: ``metric`` (a quantile, ``errors`` or ``rps``) ``op`` ``threshold``
    (ms for a latency, a fraction for errors, requests/s for rps)."""

    metric: str
    op: str
    threshold: float
    text: str

    def value_of(self, step: StepResult) -> float:
        if self.metric == "errors":
            return step.error_rate
        if self.metric == "rps":
            return step.throughput_rps
        return step.latency_ms[self.metric]

    def holds(self, value: float) -> bool:
        return value < self.threshold if self.op == "<" else value > self.threshold

    def shown(self, value: float) -> str:
        """``value`` in the unit the objective is written in (errors as a percentage,
        as ``errors<0.1%`` is: a bare fraction read 0.53 beside it)."""
        if self.metric == "errors":
            return f"{value * 100:.3g}%"
        if self.metric == "rps":
            return f"{value:.4g}/s"
        return f"{value:.4g} ms"


@dataclass(frozen=True, slots=True)
class Check:
    """One objective (or the invalid-bodies rule) judged on one step."""

    step: str
    objective: str
    value: float
    passed: bool
    shown: str
    """``value`` in the objective's unit (a count as it is)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "objective": self.objective,
            "value": self.value,
            "shown": self.shown,
            "passed": self.passed,
        }


def parse_slo(text: str) -> list[Objective]:
    """The objectives of ``text`` (comma-separated); InvalidInput naming a bad one."""
    objectives = []
    for part in (piece.strip() for piece in text.split(",")):
        if not part:
            continue
        found = _OBJECTIVE.match(part.lower())
        if found is None:
            raise InvalidInput(
                f"SLO objective '{part}' does not read; write e.g. p99<50ms, p99.9<1s, "
                "max<2s, errors<0.1%, rps>100"
            )
        metric, op, number, unit = found.groups()
        objectives.append(Objective(metric, op, _threshold(part, metric, op, number, unit), part))
    return objectives


def _threshold(part: str, metric: str, op: str, number: str, unit: str) -> float:
    try:
        value = float(number)
    except ValueError:
        raise InvalidInput(f"SLO objective '{part}': '{number}' is not a number") from None
    if metric in _LATENCIES:
        if op != "<" or unit not in _LATENCY_UNITS_MS:
            raise InvalidInput(f"SLO objective '{part}': a latency is bounded as p99<50ms")
        return value * _LATENCY_UNITS_MS[unit]
    if metric == "errors":
        if op != "<" or unit not in ("", "%"):
            raise InvalidInput(f"SLO objective '{part}': errors are bounded as errors<0.1%")
        return value / 100 if unit == "%" else value
    if op != ">" or unit not in ("", "/s"):
        raise InvalidInput(f"SLO objective '{part}': throughput is bounded as rps>100")
    return value


def judge(objectives: list[Objective], steps: list[StepResult]) -> list[Check]:
    """Every objective on every step, and the invalid-bodies rule on the steps that sent
    invalid bodies."""
    checks = []
    for step in steps:
        for objective in objectives:
            value = objective.value_of(step)
            passed = objective.holds(value)
            checks.append(Check(step.label, objective.text, value, passed, objective.shown(value)))
        if step.invalid_requests:
            wrong = step.invalid_not_4xx
            checks.append(_count(step.label, "invalid bodies without a 4xx: none", wrong))
        unanswered = step.errors.get(str(NO_ANSWER), 0)
        checks.append(_count(step.label, "unanswered requests: none", unanswered))
    return checks


def _count(step: str, rule: str, count: int) -> Check:
    """A rule that holds when nothing was counted against it; named for what is
    counted, so a failure reads "unanswered requests: none (measured 3488)" (it read
    "every request answered (measured 3488)", as if 3,488 had been)."""
    return Check(step, rule, count, count == 0, f"{count:g}")
