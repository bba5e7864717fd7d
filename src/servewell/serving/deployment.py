"""One model version being served: its runtime behind an adaptive batch queue, within
its ``timeout_ms``, with its circuit breaker and its retries; or an
:class:`~servewell.serving.backend.AsyncBackend` (a remote model) awaited on the event
loop, which makes its own attempts through the same breaker and retry counter."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import numpy as np

from servewell.batching import CANCELLED, DEADLINE, BatchPolicy, BatchQueue, BatchStats
from servewell.core.deadline import Deadline
from servewell.core.signature import Signature
from servewell.errors import DeadlineExceeded, ModelFailed, ModelUnavailable
from servewell.observability import DeploymentMetrics
from servewell.registry import ModelVersion
from servewell.runtime import Runtime, sample_inputs
from servewell.runtime.process import ProcessRuntime
from servewell.runtime.restart import ChildExit
from servewell.serving.backend import AsyncBackend
from servewell.serving.breaker import breaker_for
from servewell.serving.retry import call_with_retries
from servewell.settings import BatchingSettings
from servewell.settings.resilience import ResilienceSettings

logger = logging.getLogger(__name__)

Array = np.ndarray[Any, Any]
Inputs = dict[str, Array]
#: What one request gets back: its outputs and the rows of the model call that made them.
Result = tuple[dict[str, Array], int]


class Deployment:
    """Serves one :class:`ModelVersion` with a loaded, warmed-up runtime."""

    def __init__(
        self,
        version: ModelVersion,
        runtime: Runtime | AsyncBackend,
        batching: BatchingSettings,
        metrics: DeploymentMetrics,
        retry_after_s: int = 1,
        is_alone: Callable[[], bool] = lambda: False,
        resilience: ResilienceSettings | None = None,
        max_queue_wait_ms: float | None = None,
    ) -> None:
        self.version = version
        self.runtime = runtime
        self.batching = batching
        self.metrics = metrics
        self.retry_after_s = retry_after_s
        resilience = resilience or ResilienceSettings()
        self.timeout_ms = resilience.timeout_ms
        """The longest a request may wait for this model (``models.<name>.timeout_ms``):
        the gateway's deadline for it, or less when the caller asks for less."""
        self.max_queue_wait_ms = max_queue_wait_ms
        self.is_alone = is_alone
        """Whether the request being served is the only one in flight: then, with the
        queue idle, it runs at once instead of hopping through the batch worker."""
        self.inline = False
        self.in_flight = 0
        """Requests resolved to this version and not answered yet (the gateway counts
        them): a version that is unloaded first waits for them."""
        self.breaker = breaker_for(resilience.breaker, self.name, self.number, metrics)
        self.retries = resilience.retries
        self._queue: BatchQueue[Inputs, Result] | None = None
        self.backend = runtime if isinstance(runtime, AsyncBackend) else None
        """The backend awaited on the event loop, when the model is not a local runtime."""
        self._started = False
        self._refusal: Callable[[], Exception] | None = None
        self.isolated = runtime if isinstance(runtime, ProcessRuntime) else None
        """The runtime when it runs in a child process (``isolation: process``)."""
        if self.isolated is not None:
            self.isolated.on_exit = self._count_restart

    @property
    def name(self) -> str:
        return self.version.name

    @property
    def number(self) -> int:
        return self.version.version

    @property
    def signature(self) -> Signature:
        return self.runtime.describe()

    @property
    def platform(self) -> str:
        return self.runtime.platform

    @property
    def local(self) -> Runtime:
        """The runtime of a local model (never asked of an async backend)."""
        assert not isinstance(self.runtime, AsyncBackend)
        return self.runtime

    @property
    def is_up(self) -> bool:
        """False while the model's process restarts (``isolation: process``)."""
        return self.isolated is None or self.isolated.is_up

    def warm_up(self) -> None:
        """Warm the runtime up, and time a full batch to choose where it runs: on the
        event loop when that takes less than ``inline_below_ms``, else on a thread (a
        runtime that may block always runs on its thread). An async backend has nothing
        to warm up here."""
        if self.backend is not None:
            return
        self.local.warm_up()
        threshold_ms = self.batching.inline_below_ms
        if threshold_ms <= 0 or self.local.may_block:
            return
        rows = self.batching.max_batch_size if self.batching.enabled else 1
        batch = sample_inputs(self.signature, rows)
        timings = []
        for _ in range(5):
            started = time.perf_counter()
            self.local.predict(batch)
            timings.append(time.perf_counter() - started)
        self.inline = sorted(timings)[2] * 1000 < threshold_ms
        logger.info(
            "%s@%d: a batch of %d rows takes %.3f ms; running it %s",
            self.name,
            self.number,
            rows,
            sorted(timings)[2] * 1000,
            "on the event loop" if self.inline else "on a worker thread",
        )

    async def start(self) -> None:
        if self.backend is not None:
            await self.backend.start(self.breaker, self.metrics.retries.inc)
            self._started = True
            return
        enabled = self.batching.enabled
        policy = BatchPolicy(
            max_batch_size=self.batching.max_batch_size if enabled else 1,
            max_batch_delay_ms=self.batching.max_batch_delay_ms if enabled else 0,
            max_queue_size=self.batching.max_queue_size,
            inline=self.inline,
            retry_after_s=self.retry_after_s,
            max_queue_wait_ms=self.max_queue_wait_ms,
        )
        self._queue = BatchQueue(
            f"{self.name}@{self.number}",
            self.predict_batch,
            policy,
            rows_of=_rows,
            on_batch=self._observe,
            is_alone=self.is_alone,
            timed_out=lambda deadline: DeadlineExceeded(self.name, deadline.timeout_ms),
            on_drop=self._dropped,
        )
        await self._queue.start()

    async def stop(self, timeout_s: float = 30.0) -> None:
        """Finish what is queued and stop, waiting at most ``timeout_s`` for the model: a
        call that hangs is left on its daemon thread (it cannot be stopped), and the
        runtime is not closed under it (a child process is: it can be)."""
        if self.backend is not None:
            self._started = False
            await self.backend.close()
            return
        if self.isolated is not None:
            # First, in bounded time: a batch a hung child holds then fails at once.
            await asyncio.to_thread(self.isolated.close)
        finished = True
        if self._queue is not None:
            finished = await self._queue.stop(timeout_s)
            self._queue = None
        if not finished:
            logger.warning(
                "%s@%d still computing at shutdown: left on its thread, which does not "
                "keep the process from exiting",
                self.name,
                self.number,
            )
            return
        if self.isolated is None:
            self.local.close()

    def refuse(self, error: Callable[[], Exception]) -> int:
        """Fail every request waiting for the model, and every later one, with
        ``error()``; how many were waiting (see :meth:`BatchQueue.refuse`)."""
        if self.backend is not None:
            self._refusal = error
            return 0
        return self._queue.refuse(error) if self._queue is not None else 0

    async def predict(self, inputs: Inputs, deadline: Deadline | None = None) -> Result:
        """Outputs for validated inputs, computed in a batch with concurrent requests;
        a failed attempt is made again up to ``retries`` times within ``deadline`` (an
        async backend: its own retries, each attempt through the breaker)."""
        if self.backend is not None:
            return await self._await_backend(self.backend, inputs, deadline)
        if self.retries:
            attempt = partial(self._attempt, inputs, deadline)
            on_retry = self.metrics.retries.inc
            return await call_with_retries(attempt, self.retries, deadline, on_retry=on_retry)
        return await self._attempt(inputs, deadline)

    async def _attempt(self, inputs: Inputs, deadline: Deadline | None) -> Result:
        """One call to the model, admitted and counted by its breaker (if it has one)."""
        breaker = self.breaker
        if breaker is None:
            return await self._submit(inputs, deadline)
        ticket = breaker.admit()
        try:
            result = await self._submit(inputs, deadline)
        except BaseException as exc:
            breaker.settle(ticket, exc)
            raise
        breaker.succeeded(ticket)
        return result

    async def _submit(self, inputs: Inputs, deadline: Deadline | None) -> Result:
        """The model's answer through the batch queue: DeadlineExceeded once
        ``deadline`` passes (None: no deadline), dropped from the queue if it still
        waits there (a call already running goes on: a thread cannot be stopped, its
        result is dropped)."""
        if self._queue is None:  # stopped: unloaded, or shutting down
            raise ModelUnavailable(self.name, self.number, "not loaded", self.retry_after_s)
        try:
            return await self._queue.submit(inputs, deadline)
        except DeadlineExceeded:
            self._timed_out()
            raise

    async def _await_backend(
        self, backend: AsyncBackend, inputs: Inputs, deadline: Deadline | None
    ) -> Result:
        if self._refusal is not None:
            raise self._refusal()
        if not self._started:  # stopped: unloaded, or shutting down
            raise ModelUnavailable(self.name, self.number, "not loaded", self.retry_after_s)
        rows = _rows(inputs)
        started = time.perf_counter()
        outputs = self._checked(await backend.predict(inputs, deadline), rows)
        self.metrics.batch_size.observe(rows)
        self.metrics.compute_s.observe(time.perf_counter() - started)
        return outputs, rows

    def _timed_out(self) -> None:
        """Called once for each call to the model that ended past its deadline (waiting
        in the queue or computing): a child process that does so N times in a row is
        killed as hung (the breaker counts it as a failure on its own)."""
        if self.isolated is not None:
            self.isolated.note_timeout()

    def _dropped(self, reason: str) -> None:
        """A request left the queue without reaching the model: its deadline passed, or
        it was cancelled (the only thing that cancels one is its client going away)."""
        if reason == DEADLINE:
            self.metrics.expired_deadline.inc()
        elif reason == CANCELLED:
            self.metrics.expired_disconnected.inc()

    def predict_batch(self, items: Sequence[Inputs]) -> list[Result]:
        """Run the model once on several requests' rows and split its outputs back."""
        if len(items) == 1:
            return [(self._checked(self.local.predict(items[0]), _rows(items[0])), _rows(items[0]))]
        counts = [_rows(item) for item in items]
        total = sum(counts)
        merged = {name: np.concatenate([item[name] for item in items]) for name in items[0]}
        outputs = self._checked(self.local.predict(merged), total)
        results: list[Result] = []
        start = 0
        for count in counts:  # plain slices: views, no copies
            end = start + count
            results.append(({name: value[start:end] for name, value in outputs.items()}, total))
            start = end
        return results

    def _checked(self, outputs: dict[str, Array], rows: int) -> dict[str, Array]:
        for name, value in outputs.items():
            if value.ndim == 0 or len(value) != rows:
                raise ModelFailed(
                    f"{self.name}@{self.number} gave {len(value) if value.ndim else 0} rows "
                    f"of '{name}' for {rows} input rows"
                )
        return outputs

    def _count_restart(self, event: ChildExit) -> None:
        self.metrics.count_restart(event.reason)

    def _observe(self, stats: BatchStats) -> None:
        metrics = self.metrics
        metrics.batch_size.observe(stats.rows)
        metrics.compute_s.observe(stats.compute_s)
        for wait_s in stats.queue_wait_s:
            metrics.queue_wait_s.observe(wait_s)
        metrics.queue_depth.set(stats.depth)


def _rows(inputs: Inputs) -> int:
    return len(next(iter(inputs.values())))
