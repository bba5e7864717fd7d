"""The memory budget: a version is loaded only if the estimates of every version the
server holds, plus its own, stay within ``server.memory_budget_mb``; else the load is
refused (``OverMemoryBudget``: 507 through the API, exit 10 from the CLI, a warning and
``servewell_model_load_refusals_total``) and what is served keeps serving, instead of
the kernel killing the server.

A version's estimate is what it took when it was first loaded, stored with it in the
registry (``SqlRegistry.record_memory``); before that, its served artifact's size times
``server.memory_estimate_factor``. The measurement is the growth of this process's
resident set over the load and warm-up (one load measured at a time, so two loads never
count each other's memory), or, with ``isolation: process``, the resident set of the
model's own process. It is an approximation: requests served meanwhile allocate too; a
load that reuses memory an unloaded version left to the allocator grows the resident
set less than it uses (the measurement is never below the artifact's size); and the
first version of its kind also pays for importing its runtime's library (so it reads
high, the safe side).

A promote loads the new version while the old one still serves, so it needs room for
both; the old version's memory counts until it has stopped.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from servewell.errors import OverMemoryBudget
from servewell.observability.memory import machine_memory_bytes, resident_bytes
from servewell.observability.memory_metrics import MemoryMetrics
from servewell.registry import ModelVersion
from servewell.serving.loading import serving_artifact_role
from servewell.settings import Settings

logger = logging.getLogger(__name__)

#: The machine's memory a server takes without ``server.memory_budget_mb`` (shared by
#: its ``--workers``): half, leaving the rest to the system, page cache and neighbours.
DEFAULT_SHARE = 0.5


def budget_bytes(settings: Settings) -> int | None:
    """``server.memory_budget_mb`` in bytes, else :data:`DEFAULT_SHARE` of the machine's
    (or cgroup's) memory per worker process; None when the machine's cannot be read."""
    server = settings.server
    if server.memory_budget_mb is not None:
        return server.memory_budget_mb * 2**20
    machine = machine_memory_bytes()
    return None if machine is None else int(machine * DEFAULT_SHARE / server.workers)


@dataclass(frozen=True, slots=True)
class Estimate:
    size_bytes: int
    measured: bool
    """Measured at the version's first load; else from its artifact's size."""


def estimate(settings: Settings, version: ModelVersion) -> Estimate:
    """What ``version`` is expected to take in memory once loaded."""
    if version.memory_bytes is not None:
        return Estimate(version.memory_bytes, True)
    factor = settings.server.memory_estimate_factor
    return Estimate(int(artifact_bytes(settings, version) * factor), False)


def artifact_bytes(settings: Settings, version: ModelVersion) -> int:
    """The size of the artifact a server runs ``version`` from."""
    role = serving_artifact_role(version, settings.runtime.prefer_onnx)
    return version.artifact(role).size_bytes


class Holding:
    """One version's share of the budget, from its admission until it has stopped."""

    def __init__(self, version: ModelVersion, size_bytes: int) -> None:
        self.version = version
        self.size_bytes = size_bytes
        self.is_loaded = False


@dataclass(slots=True)
class Reading:
    """A load being measured."""

    before_bytes: int
    pid: int | None = None
    """Set in the block when the model runs in a process of its own."""
    measured_bytes: int | None = None
    """After the block: what this load took (never less than the artifact's size)."""


class MemoryBudget:
    """The versions a server holds and the memory they take, against its budget."""

    def __init__(
        self, settings: Settings, limit_bytes: int | None, metrics: MemoryMetrics | None = None
    ) -> None:
        self.settings = settings
        self.limit_bytes = limit_bytes
        """None: no limit (loads are measured, never refused)."""
        self.metrics = metrics
        self._holdings: set[Holding] = set()
        self._measuring = threading.Lock()

    @property
    def held_bytes(self) -> int:
        """The estimates of every version loaded, being loaded or still stopping."""
        return sum(holding.size_bytes for holding in self._holdings)

    def admit(self, version: ModelVersion) -> Holding:
        """Take ``version``'s estimate out of the budget, or refuse it (OverMemoryBudget,
        logged and counted) when it does not fit beside what is held."""
        needed = estimate(self.settings, version)
        held = self.held_bytes
        if self.limit_bytes is not None and held + needed.size_bytes > self.limit_bytes:
            refusal = OverMemoryBudget(
                version.name, version.version, needed.size_bytes, held, self.limit_bytes
            )
            how = "measured at its first load" if needed.measured else "estimated"
            fields = {"message": f"{refusal.message} (its need {how})", **refusal.detail}
            logger.warning(fields["message"], extra={"fields": fields})
            if self.metrics is not None:
                self.metrics.refused(version.name, version.version)
            raise refusal
        holding = Holding(version, needed.size_bytes)
        self._holdings.add(holding)
        return holding

    @contextmanager
    def measuring(self, holding: Holding) -> Iterator[Reading]:
        """Measure the load done in the block (on a worker thread): ``holding`` then
        takes what the version was measured at first (the stored figure), else what
        this load took (``Reading.measured_bytes``)."""
        with self._measuring:
            reading = Reading(resident_bytes())
            yield reading
            if reading.pid is not None:
                grown = resident_bytes(reading.pid)
            else:
                grown = resident_bytes() - reading.before_bytes
        version = holding.version
        reading.measured_bytes = max(grown, artifact_bytes(self.settings, version))
        holding.size_bytes = version.memory_bytes or reading.measured_bytes
        holding.is_loaded = True
        if self.metrics is not None:
            self.metrics.loaded(version.name, version.version, holding.size_bytes)

    def release(self, holding: Holding) -> None:
        """``holding``'s version has stopped (or failed to load): its memory is free."""
        if holding not in self._holdings:
            return
        self._holdings.discard(holding)
        if self.metrics is not None and holding.is_loaded:
            self.metrics.unloaded(holding.version.name, holding.version.version)
