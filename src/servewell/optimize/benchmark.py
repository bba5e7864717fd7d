"""In-process latency and throughput of runtimes, measured side by side.

Two runtimes compared on one busy machine should see the same noise: the runs are split
into rounds that alternate between them, so a burst of load elsewhere hits both. One
row: p50 and p99 over single-row predictions (rows cycling through the data, so a text
model sees texts of every length). Throughput: rows per second over batches of 32.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from servewell.runtime.base import Array, Runtime


@dataclass(frozen=True, slots=True)
class BenchmarkPlan:
    """How much to measure: more runs, steadier figures, longer waits."""

    single_runs: int = 200
    batches: int = 20
    batch_size: int = 32
    rounds: int = 4


@dataclass(frozen=True, slots=True)
class Timing:
    p50_ms: float
    p99_ms: float
    throughput_rows_s: float
    single_runs: int
    batch_runs: int
    batch_size: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
            "throughput_rows_s": self.throughput_rows_s,
            "single_runs": self.single_runs,
            "batch_runs": self.batch_runs,
            "batch_size": self.batch_size,
        }


def time_runtimes(
    runtimes: Sequence[Runtime], inputs: Mapping[str, Array], plan: BenchmarkPlan | None = None
) -> list[Timing]:
    """Latency and throughput of each runtime on rows of ``inputs``, in alternating rounds."""
    plan = plan or BenchmarkPlan()
    rows = len(next(iter(inputs.values())))
    if rows == 0:
        raise ValueError("no rows to time")
    singles = [_rows(inputs, [i % rows]) for i in range(max(plan.single_runs, 1))]
    batches = [
        _rows(inputs, [(b * plan.batch_size + j) % rows for j in range(plan.batch_size)])
        for b in range(max(plan.batches, 1))
    ]
    for runtime in runtimes:  # first calls allocate; keep them out of the figures
        runtime.predict(singles[0])
        runtime.predict(batches[0])
    latencies: list[list[float]] = [[] for _ in runtimes]
    batch_seconds = [0.0 for _ in runtimes]
    rounds = max(1, min(plan.rounds, len(singles), len(batches)))
    for round_index in range(rounds):
        for k, runtime in enumerate(runtimes):
            for single in singles[round_index::rounds]:
                start = time.perf_counter_ns()
                runtime.predict(single)
                latencies[k].append((time.perf_counter_ns() - start) / 1e6)
            start = time.perf_counter_ns()
            for batch in batches[round_index::rounds]:
                runtime.predict(batch)
            batch_seconds[k] += (time.perf_counter_ns() - start) / 1e9
    return [
        Timing(
            p50_ms=float(np.percentile(latencies[k], 50)),
            p99_ms=float(np.percentile(latencies[k], 99)),
            throughput_rows_s=len(batches) * plan.batch_size / max(batch_seconds[k], 1e-9),
            single_runs=len(singles),
            batch_runs=len(batches),
            batch_size=plan.batch_size,
        )
        for k in range(len(runtimes))
    ]


def _rows(inputs: Mapping[str, Array], index: list[int]) -> dict[str, Array]:
    return {name: array[index] for name, array in inputs.items()}
