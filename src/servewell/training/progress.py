"""How a training run reports as it goes: a summary per stage, and the epochs live."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from servewell.training.fit import EpochRecord


class Progress(Protocol):
    """Who wants to know how the pipeline is going (the CLI's Rich display, a log, a test)."""

    def stage_started(self, stage: str) -> None: ...

    def stage_finished(self, summary: StageSummary) -> None: ...

    def epoch(self, record: EpochRecord, total: int) -> None: ...


class SilentProgress:
    def stage_started(self, stage: str) -> None:
        pass

    def stage_finished(self, summary: StageSummary) -> None:
        pass

    def epoch(self, record: EpochRecord, total: int) -> None:
        pass


@dataclass(slots=True)
class StageSummary:
    """One line of the data-flow trace: rows x columns in and out, and what happened.

    The counts stay None for a stage that no table flows through (gate, register).
    """

    stage: str
    rows_in: int | None = None
    columns_in: int | None = None
    rows_out: int | None = None
    columns_out: int | None = None
    seconds: float = 0.0
    lines: list[str] = field(default_factory=list)
    passed: bool = True
    """False when the stage failed: a gate threshold missed, or the stage raised."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "passed": self.passed,
            "rows_in": self.rows_in,
            "columns_in": self.columns_in,
            "rows_out": self.rows_out,
            "columns_out": self.columns_out,
            "seconds": self.seconds,
            "lines": self.lines,
        }


class StageLog:
    """Times each stage, tells ``progress``, and keeps the summaries in order."""

    def __init__(self, progress: Progress | None = None) -> None:
        self.progress = progress or SilentProgress()
        self.summaries: list[StageSummary] = []

    @contextmanager
    def stage(self, name: str) -> Iterator[StageSummary]:
        summary = StageSummary(name)
        self.progress.stage_started(name)
        start = time.perf_counter()
        try:
            yield summary
        except BaseException:
            summary.passed = False
            raise
        finally:  # a stage that raised is shown (as failed) too
            summary.seconds = time.perf_counter() - start
            self.summaries.append(summary)
            self.progress.stage_finished(summary)
