"""A canary rollout: a candidate version takes a model's traffic in steps, each step
taken only once the candidate measured no worse than the primary over the last one.

Pure shapes and their checks; the registry stores rollouts (``registry/rollouts.py``),
``observability/rollout_window.py`` judges the measurements, and the driver
(``serving/rollout.py``) moves from step to step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from itertools import pairwise, zip_longest

from servewell.errors import InvalidRollout

#: The lease that lets one process of many advance ``model``'s rollout.
LEASE_PREFIX = "rollout:"


class RolloutState(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    ABORTED = "aborted"


@dataclass(frozen=True, slots=True)
class Bounds:
    """How much worse than the primary the candidate may measure over one step."""

    max_error_rate: float = 0.01
    """The candidate's error rate may pass the primary's by this much: 5xx answers (504,
    past the deadline, included) and requests the client gave up on (499), for both."""
    max_p99_ratio: float = 1.5
    """The candidate's p99 latency may be this many times the primary's."""
    min_requests: int = 50
    """Requests each version must have answered in the step before it is judged."""

    def __post_init__(self) -> None:
        if not 0 <= self.max_error_rate <= 1:  # NaN fails this too
            raise InvalidRollout(
                f"--max-error-rate must be between 0 and 1, got {self.max_error_rate:g}"
            )
        if not (self.max_p99_ratio >= 1 and math.isfinite(self.max_p99_ratio)):
            raise InvalidRollout(
                f"--max-p99-ratio must be a finite number, 1 or more, got {self.max_p99_ratio:g}"
            )
        if self.min_requests < 1:
            raise InvalidRollout(f"--min-requests must be 1 or more, got {self.min_requests}")


@dataclass(frozen=True, slots=True)
class Rollout:
    """One rollout as the registry holds it (times are seconds since the epoch)."""

    id: int
    model: str
    primary: int
    """The version the model's bare name served when the rollout started."""
    candidate: int
    steps: tuple[int, ...]
    """The candidate's share at each step, in percent; the last is 100."""
    every_s: float
    bounds: Bounds
    step_index: int
    """The step whose share the candidate has now."""
    state: RolloutState
    settled: bool
    """Whether the traffic reflects the state: for an ended rollout, whether its split
    was cleared (and, completed, the production alias moved)."""
    applied_step: int
    """The step whose split was last written to the traffic policy (-1: none yet)."""
    step_started_at: float
    next_step_at: float
    note: str | None
    """Why the next step waits (too few requests), while it does."""
    reason: str | None
    """Why it was aborted."""
    started_at: float
    started_by: str | None
    ended_at: float | None
    ended_by: str | None

    @property
    def percent(self) -> int:
        """The candidate's share now: the step's while running, 100 once completed, 0
        once aborted."""
        if self.state is RolloutState.COMPLETED:
            return 100
        if self.state is RolloutState.ABORTED:
            return 0
        return self.steps[self.step_index]

    @property
    def is_last_step(self) -> bool:
        """Whether the next step is the one that hands the candidate all the traffic."""
        return self.step_index + 1 == len(self.steps) - 1


@dataclass(frozen=True, slots=True)
class RolloutEvent:
    """Something that happened to a rollout: started, step, aborted, completed."""

    at: float
    kind: str
    percent: int
    detail: str
    by: str | None


@dataclass(frozen=True, slots=True)
class Window:
    """What one version answered over a stretch of time: requests, 5xx answers, and
    requests per latency bucket (not cumulative; the bounds are the metrics', in
    ``observability/rollout_window.py``)."""

    requests: int = 0
    errors: int = 0
    """Answers with a 5xx status (a caller's own 4xx mistakes are not the version's)."""
    buckets: tuple[int, ...] = ()

    def plus(self, other: Window) -> Window:
        return Window(
            self.requests + other.requests,
            self.errors + other.errors,
            tuple(a + b for a, b in zip_longest(self.buckets, other.buckets, fillvalue=0)),
        )

    def minus(self, earlier: Window) -> Window:
        """What was counted since ``earlier`` (a reading of the same counters)."""
        return Window(
            self.requests - earlier.requests,
            self.errors - earlier.errors,
            tuple(a - b for a, b in zip_longest(self.buckets, earlier.buckets, fillvalue=0)),
        )

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None


def parse_steps(text: str) -> tuple[int, ...]:
    """``"5,25,50,100"``: whole percentages, rising, ending at 100, at least one below."""
    parts = [part.strip() for part in text.split(",")]
    if not all(part.isascii() and part.isdigit() for part in parts):
        raise InvalidRollout(
            f"steps {text!r} should be whole percentages separated by commas, e.g. 5,25,50,100"
        )
    return check_steps([int(part) for part in parts])


def check_steps(steps: list[int] | tuple[int, ...]) -> tuple[int, ...]:
    spelled = ",".join(map(str, steps))
    if len(steps) < 2:
        raise InvalidRollout(
            f"steps {spelled}: give at least one step below 100 to compare the versions "
            "on, then 100, e.g. 5,25,50,100"
        )
    if any(not 1 <= step <= 100 for step in steps):
        raise InvalidRollout(f"steps {spelled}: each step is a percentage from 1 to 100")
    if any(later <= earlier for earlier, later in pairwise(steps)):
        raise InvalidRollout(f"steps {spelled}: each step must be larger than the one before")
    if steps[-1] != 100:
        raise InvalidRollout(f"steps {spelled}: the last step must be 100")
    return tuple(steps)
