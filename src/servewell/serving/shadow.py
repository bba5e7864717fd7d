"""Shadow traffic: a share of a model's requests copied to a candidate version after the
primary has answered, and the two answers compared, off the request path.

Per request (a path naming no version, answered 200 by the model itself: not from the
response cache, not by a fallback) the gateway calls :meth:`ShadowTraffic.offer`: a
dict get, one ``random.random()`` and a deque append. Each model with a shadow has one
:class:`ShadowLane`: a bounded queue (``server.shadow_queue_size`` copies; past it a
copy is dropped and counted) and one task that empties it, a copy at a time, through
:meth:`Predictor.infer <servewell.serving.predictor.Predictor.infer>` on the shadow's
deployment (never the response cache, never a fallback chain), within the shadow's own
``timeout_ms``. One copy at a time bounds what the shadow takes from the machine however
busy the primary is; what it cannot keep up with is dropped, and the drops say so.
Failures are counted and logged (a warning a minute at most per model, the rest at
debug); nothing of the shadow ever reaches the caller. A lane that stops (its policy
changed, the server shuts down) counts the copies it leaves uncompared as dropped too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from typing import Any

from servewell.core.comparison import RowComparison, compare_rows
from servewell.core.deadline import Deadline
from servewell.core.inference import InferRequest, InferResponse
from servewell.observability.shadow_metrics import ShadowMetrics
from servewell.serving.deployment import Deployment
from servewell.serving.predictor import Predictor

logger = logging.getLogger(__name__)

#: The shortest time between two warnings about one model's shadow failing.
WARNING_INTERVAL_S = 60.0

Copy = tuple[InferRequest, InferResponse]
"""A request as the primary's model step took it, and the primary's answer."""


class ShadowLane:
    """One model's shadow: its deployment, its share, its queue and the task emptying it."""

    def __init__(
        self,
        deployment: Deployment,
        percent: float,
        predictor: Predictor,
        metrics: ShadowMetrics,
        queue_size: int,
    ) -> None:
        self.deployment = deployment
        self.fraction = percent / 100
        """The share of requests copied (changed in place when only the percent moves)."""
        self.predictor = predictor
        self.metrics = metrics
        self.queue_size = queue_size
        self.queue: deque[Copy] = deque()
        model, shadow = deployment.name, str(deployment.number)
        self._count_dropped = metrics.count_dropped
        self._errors = metrics.errors.labels(model, shadow)
        self._duration_s = metrics.duration_s.labels(model, shadow)
        self._by_primary: dict[int, tuple[Any, Any, Any]] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._mirroring = False
        """Whether a copy is being computed (one taken off the queue)."""
        self._warned_at = -WARNING_INTERVAL_S
        self._unwarned = 0

    def start(self) -> None:
        name = f"servewell-shadow-{self.deployment.name}@{self.deployment.number}"
        self._task = asyncio.create_task(self._run(), name=name)

    async def stop(self) -> None:
        """Stop at once: the copy being computed is abandoned, the queued ones dropped;
        each counted as dropped (``stopped``)."""
        # Counted before the cancel: nothing runs in between, so none is missed.
        for _ in range(len(self.queue) + self._mirroring):
            self._count_dropped(self.deployment.name, "stopped")
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._mirroring = False
        self.queue.clear()

    def offer(self, request: InferRequest, primary: InferResponse) -> None:
        """Copy the request to the shadow, if it is drawn, and there is room."""
        if random.random() >= self.fraction or primary.version == self.deployment.number:
            return
        if len(self.queue) >= self.queue_size:
            self._count_dropped(self.deployment.name)
            return
        self.queue.append((request, primary))
        self._wake.set()

    async def _run(self) -> None:
        queue = self.queue
        while True:
            if not queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            request, primary = queue.popleft()
            self._mirroring = True
            await self._mirror(request, primary)
            self._mirroring = False

    async def _mirror(self, request: InferRequest, primary: InferResponse) -> None:
        deployment = self.deployment
        began = time.perf_counter()
        try:
            deadline = Deadline.after_ms(deployment.timeout_ms)
            answer = await self.predictor.infer(request, deployment, deadline=deadline)
            compared = compare_rows(primary.outputs, answer.outputs)
        except Exception as exc:  # never the caller's: counted, logged
            self._duration_s.observe(time.perf_counter() - began)
            self._errors.inc()
            self._log_failure(exc)
            return
        self._duration_s.observe(time.perf_counter() - began)
        self._count(primary.version, compared)

    def _count(self, primary: int, compared: RowComparison) -> None:
        children = self._by_primary.get(primary)
        if children is None:  # looked up once per primary version: ``labels()`` is slow
            metrics, labels = self.metrics, (self.deployment.name, str(primary))
            shadow = str(self.deployment.number)
            children = self._by_primary[primary] = (
                metrics.comparisons.labels(*labels, shadow, "true"),
                metrics.comparisons.labels(*labels, shadow, "false"),
                metrics.probability_diff.labels(*labels, shadow),
            )
        agree, disagree, probability_diff = children
        if compared.agreeing:
            agree.inc(compared.agreeing)
        if compared.disagreeing:
            disagree.inc(compared.disagreeing)
        if compared.probability_diff is not None:
            for diff in compared.probability_diff.tolist():
                probability_diff.observe(diff)

    def _log_failure(self, exc: Exception) -> None:
        now = time.monotonic()
        why = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
        where = f"{self.deployment.name}@{self.deployment.number}"
        if now - self._warned_at < WARNING_INTERVAL_S:
            self._unwarned += 1
            logger.debug("shadow %s failed on a copy: %s", where, why)
            return
        more = f" ({self._unwarned} more since the last warning)" if self._unwarned else ""
        logger.warning("shadow %s failed on a copy of a request: %s%s", where, why, more)
        self._warned_at, self._unwarned = now, 0


class ShadowTraffic:
    """Every served model's shadow lane, as the traffic policies say (``serving/routing.py``
    applies them)."""

    def __init__(self, predictor: Predictor, metrics: ShadowMetrics, queue_size: int) -> None:
        self.predictor = predictor
        self.metrics = metrics
        self.queue_size = queue_size
        self.lanes: dict[str, ShadowLane] = {}
        """Model name -> its lane; replaced whole at each change (read per request)."""

    def offer(self, model: str, request: InferRequest, primary: InferResponse) -> None:
        """The primary answered ``request`` with ``primary``: copy it to ``model``'s
        shadow, if it has one and the copy is drawn."""
        lane = self.lanes.get(model)
        if lane is not None:
            lane.offer(request, primary)

    async def apply(self, wanted: dict[str, tuple[Deployment, float]]) -> None:
        """Shadow each model to its (started) deployment at its percentage: a lane whose
        deployment stays keeps its queue and only changes its share; the others stop."""
        lanes: dict[str, ShadowLane] = {}
        for model, (deployment, percent) in wanted.items():
            lane = self.lanes.get(model)
            if lane is not None and lane.deployment is deployment:
                lane.fraction = percent / 100
            else:
                lane = ShadowLane(
                    deployment, percent, self.predictor, self.metrics, self.queue_size
                )
                lane.start()
            lanes[model] = lane
        stopped = [lane for model, lane in self.lanes.items() if lanes.get(model) is not lane]
        self.lanes = lanes
        for lane in stopped:
            await lane.stop()

    async def stop(self) -> None:
        lanes, self.lanes = self.lanes, {}
        for lane in lanes.values():
            await lane.stop()
