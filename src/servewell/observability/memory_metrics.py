"""The memory budget's metrics (``serving/budget.py``): what each loaded version takes,
the loads it refused, and the server process's resident memory. Changed at loads and
unloads only (rare), so they go straight to prometheus_client's objects.

With ``--workers N`` every worker loads its own copy of each version: the model gauge
and the process gauge add the live workers up (``livesum``), and a worker's process
gauge is refreshed when it loads or unloads a version (one process alone: at every
scrape). An unloaded version's gauge is removed; with workers its series reads 0, as
prometheus_client keeps each worker's values in files until the worker exits.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from servewell.observability.memory import resident_bytes
from servewell.observability.metrics import ServingMetrics, forget_series, is_multiprocess

#: The ``reason`` of a load the memory budget refused.
OVER_BUDGET = "memory_budget"


class MemoryMetrics:
    def __init__(self, serving: ServingMetrics) -> None:
        registry = serving.registry
        self.model_bytes = Gauge(
            "servewell_model_memory_bytes",
            "Memory a loaded model version takes: measured at its first load (the resident "
            "set's growth over the load, or its own process's resident set), else estimated "
            "from its artifact's size.",
            ("model", "version"),
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.refusals = Counter(
            "servewell_model_load_refusals",
            "Loads of a model version refused, by reason (memory_budget: it would have "
            "taken the server past server.memory_budget_mb; the versions served kept "
            "serving).",
            ("model", "version", "reason"),
            registry=registry,
        )
        self.process_bytes = Gauge(
            "servewell_process_resident_memory_bytes",
            "Resident memory of the server process (with --workers N, of its workers).",
            multiprocess_mode="livesum",
            registry=registry,
        )
        if not is_multiprocess():
            self.process_bytes.set_function(resident_bytes)

    def loaded(self, model: str, version: int, size_bytes: int) -> None:
        self.model_bytes.labels(model, str(version)).set(size_bytes)
        self._refresh()

    def unloaded(self, model: str, version: int) -> None:
        forget_series(self.model_bytes, model, str(version))
        self._refresh()

    def refused(self, model: str, version: int, reason: str = OVER_BUDGET) -> None:
        self.refusals.labels(model, str(version), reason).inc()

    def _refresh(self) -> None:
        if is_multiprocess():
            self.process_bytes.set(resident_bytes())
