"""Canary rollouts, driven by every serving process and advanced by one.

Each server process runs one :class:`RolloutDriver`, a background task that ticks
every second. Each tick it reads the active rollouts from the registry (one query;
none: done), and for each one:

* **reports** what this process counted of the rollout's two versions since its last
  report (its own per-arm metrics, ``ServingMetrics.own_families``) to the registry,
  so the judge sees every replica and worker: every 5 s at most (half a step for
  shorter steps), so a step's judgement may miss the last few seconds and count a
  few of the step before;
* takes or renews the lease ``rollout:<model>`` (``registry/leases.py``); the one
  process that holds it **advances** the rollout: it writes the split of the current
  step if it is not written yet (after a crash, or a start from the CLI), and once the
  step's time is up sums every process's reports since the step began and judges them
  (``observability/rollout_window.judge``): too few requests — wait, and say so in the
  rollout's note; a bound broken — abort: the split is cleared, the reason stored,
  logged and counted; else the next step, or at the last one, completion: the
  production alias moves to the candidate and the split is cleared. A model whose
  traffic the settings file owns (``source: file``) is never moved: its rollout (started
  before the file declared it) is aborted, the reason saying so.

Every move is a conditional write of the rollout's row, its event in the same
transaction (``registry/rollouts.py``), so even two holders at once (a lease taken
over while its old holder still finished a tick) move a step once. A lease lapses 10 s
after its holder stops renewing it (killed), so another process carries on.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from servewell.core.rollout import LEASE_PREFIX, Rollout, RolloutState, Window
from servewell.core.traffic import TrafficPolicy
from servewell.errors import ServewellError, TrafficDeclaredInFile
from servewell.observability.metrics import ARM_REQUESTS, ARM_S, ServingMetrics
from servewell.observability.rollout_metrics import RolloutMetrics
from servewell.observability.rollout_window import Outcome, Verdict, judge, own_windows
from servewell.registry.leases import Leases, holder_id
from servewell.registry.rollout_observations import RolloutObservations
from servewell.registry.rollout_traffic import apply_step, settle
from servewell.registry.rollouts import RolloutStore
from servewell.registry.sql import SqlRegistry
from servewell.serving.polling import Poller
from servewell.serving.traffic import refuse_if_declared

logger = logging.getLogger(__name__)

TICK_S = 1.0
LEASE_TTL_S = 10.0
#: How often a process reports at most (half a step when steps are shorter): a row per
#: version and report, so many replicas and workers over a 10-minute step stay few.
REPORT_S = 5.0


class RolloutDriver:
    def __init__(
        self,
        registry: SqlRegistry,
        metrics: ServingMetrics,
        tick_s: float = TICK_S,
        lease_ttl_s: float = LEASE_TTL_S,
        report_s: float = REPORT_S,
        clock: Callable[[], float] = time.time,
        declared: Mapping[str, TrafficPolicy] | None = None,
    ) -> None:
        self.declared = dict(declared or {})
        """The settings' traffic policies: a model the file owns is never moved."""
        self.store = RolloutStore(registry, clock)
        self.observations = RolloutObservations(registry)
        self.leases = Leases(registry, clock)
        self.metrics = metrics
        self.rollout_metrics = RolloutMetrics(metrics)
        self.lease_ttl_s = lease_ttl_s
        self.report_s = report_s
        self.clock = clock
        self.holder = holder_id()
        self._poller = Poller("servewell-rollouts", self._tick_safely, tick_s)
        self._reported: dict[tuple[int, int], Window] = {}
        """(rollout id, version) -> this process's counts as of its last report."""
        self._reported_at: dict[int, float] = {}
        self._held: set[str] = set()
        self._shown: set[str] = set()
        """Models the step gauge has a value for."""

    def start(self) -> None:
        self._poller.start()

    async def stop(self) -> None:
        await self._poller.stop()
        if self._held:  # give the leases up, so another replica carries on at once
            await asyncio.to_thread(self._release_all)

    async def tick(self) -> None:
        """Report, then advance what this process holds the lease of."""
        active = await asyncio.to_thread(self.store.active)
        if not active and not self._shown:
            return
        families = self.metrics.own_families(ARM_REQUESTS, ARM_S)  # on the loop's thread
        readings = {rollout.id: own_windows(families, rollout.model) for rollout in active}
        await asyncio.to_thread(self._work, active, readings)

    async def _tick_safely(self) -> None:
        try:
            await self.tick()
        except ServewellError as exc:  # the registry is down: the next tick tries again
            logger.warning("could not drive the rollouts: %s", exc.message)
        except Exception:
            logger.exception("could not drive the rollouts")

    def _work(self, active: list[Rollout], readings: dict[int, dict[int, Window]]) -> None:
        self._show(active)
        for rollout in active:
            if rollout.state is RolloutState.RUNNING:
                self._report(rollout, readings.get(rollout.id, {}))
            self._drive(rollout)
        live = {rollout.id for rollout in active}
        self._reported = {key: w for key, w in self._reported.items() if key[0] in live}
        self._reported_at = {key: at for key, at in self._reported_at.items() if key in live}

    def _report(self, rollout: Rollout, reading: dict[int, Window]) -> None:
        now_s = self.clock()
        last_s = self._reported_at.get(rollout.id)
        if last_s is not None and now_s - last_s < min(self.report_s, rollout.every_s / 2):
            return
        self._reported_at[rollout.id] = now_s
        since_last: dict[int, Window] = {}
        for version in (rollout.primary, rollout.candidate):
            now = reading.get(version, Window())
            last = self._reported.get((rollout.id, version))
            self._reported[(rollout.id, version)] = now
            if last is not None:  # first sight: what came before is not this rollout's
                since_last[version] = now.minus(last)
        self.observations.report(rollout.id, self.holder, since_last, now_s)

    def _drive(self, rollout: Rollout) -> None:
        lease = LEASE_PREFIX + rollout.model
        if not self.leases.acquire(lease, self.holder, self.lease_ttl_s):
            self._held.discard(lease)
            return
        self._held.add(lease)
        if rollout.state is not RolloutState.RUNNING:  # ended, traffic not settled yet
            self._settle(rollout)
            return
        try:  # started before the file took the model over: its steps would never be served
            refuse_if_declared(self.declared, rollout.model)
        except TrafficDeclaredInFile as exc:
            self._end(rollout, RolloutState.ABORTED, exc.message)
            return
        if rollout.applied_step != rollout.step_index:
            apply_step(self.store, rollout)
        if self.clock() >= rollout.next_step_at:
            self._judge(rollout)

    def _judge(self, rollout: Rollout) -> None:
        windows = self.observations.since(rollout.id, rollout.step_started_at)
        verdict = judge(
            (rollout.primary, windows.get(rollout.primary, Window())),
            (rollout.candidate, windows.get(rollout.candidate, Window())),
            rollout.bounds,
        )
        over = f"over {_interval(rollout.step_started_at, self.clock())}"
        if verdict.outcome is Outcome.WAIT:
            self.store.wait(rollout, f"{verdict.detail}, {over}")
        elif verdict.outcome is Outcome.ABORT:
            self._abort(rollout, verdict, over)
        elif rollout.is_last_step:
            self._end(rollout, RolloutState.COMPLETED, f"{verdict.detail}, {over}")
        elif self.store.advance(rollout, f"{verdict.detail}, {over}", by=self.holder):
            moved = dataclasses.replace(rollout, step_index=rollout.step_index + 1)
            apply_step(self.store, moved)
            self.observations.forget(rollout.id, before=self.clock())
            logger.info(
                "rollout of %s to version %d: %d%% of requests (%s)",
                rollout.model,
                rollout.candidate,
                moved.percent,
                verdict.detail,
            )

    def _abort(self, rollout: Rollout, verdict: Verdict, over: str) -> None:
        bound = verdict.bound or "unknown"
        detail = f"{bound} bound broken at {rollout.percent}%: {verdict.detail}, {over}"
        if self._end(rollout, RolloutState.ABORTED, detail):
            self.rollout_metrics.aborts.labels(rollout.model, bound).inc()

    def _end(self, rollout: Rollout, state: RolloutState, detail: str) -> bool:
        if not self.store.end(rollout, state, detail, by=self.holder):
            return False
        log = logger.warning if state is RolloutState.ABORTED else logger.info
        log("rollout of %s to version %d %s: %s", rollout.model, rollout.candidate, state, detail)
        self._settle(dataclasses.replace(rollout, state=state))
        return True

    def _settle(self, rollout: Rollout) -> None:
        settle(self.store, rollout)
        self.observations.forget(rollout.id)
        self.rollout_metrics.step_percent.labels(rollout.model).set(rollout.percent)
        lease = LEASE_PREFIX + rollout.model
        self.leases.release(lease, self.holder)
        self._held.discard(lease)

    def _show(self, active: list[Rollout]) -> None:
        """The step gauge: each active rollout's share, and the last one's once it left."""
        gauge = self.rollout_metrics.step_percent
        models = {rollout.model for rollout in active}
        for rollout in active:
            gauge.labels(rollout.model).set(rollout.percent)
        for model in self._shown - models:
            gauge.labels(model).set(self.store.get(model).percent)
        self._shown = models

    def _release_all(self) -> None:
        for lease in sorted(self._held):
            self.leases.release(lease, self.holder)
        self._held.clear()


def _interval(start: float, end: float) -> str:
    """``"the last 10 s (12:00:01-12:00:11 UTC)"``."""

    def spell(at: float) -> str:
        return datetime.fromtimestamp(at, UTC).strftime("%H:%M:%S")

    return f"the last {end - start:.0f} s ({spell(start)}-{spell(end)} UTC)"
