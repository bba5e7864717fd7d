"""A bounded queue that turns concurrent submissions into batched calls.

One worker task per queue takes what is waiting (up to ``max_batch_size`` rows) and
calls the handler once for all of it. It never waits on a timer while it is idle, so a
lone request runs at once; while the handler computes, new submissions pile up and form
the next batch, which is how batches grow with load. Before a call it may linger, at
most ``max_batch_delay_ms``, but only while more work keeps arriving between two turns
of the event loop.

The handler is a plain function on a whole batch. It runs on the event loop when it is
cheap (``inline``) and on the queue's own worker thread otherwise, so a slow model never
stalls the loop. When the queue is full a submission fails at once with
:class:`~servewell.errors.Overloaded` instead of waiting without bound; once
:meth:`BatchQueue.refuse` is called (a server's drain deadline), every submission fails,
those still waiting included.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, TypeVar

from servewell.errors import ModelCrashed, ModelUnavailable, Overloaded

logger = logging.getLogger(__name__)

In = TypeVar("In")
Out = TypeVar("Out")


@dataclass(frozen=True, slots=True)
class BatchPolicy:
    """How a queue forms batches."""

    max_batch_size: int = 64
    """Most rows in one handler call (one larger submission still runs, alone)."""
    max_batch_delay_ms: float = 2.0
    """Longest a batch lingers for more work, and only while more keeps arriving."""
    max_queue_size: int = 512
    """Submissions waiting beyond this are refused with Overloaded."""
    inline: bool = False
    """Call the handler on the event loop instead of a worker thread."""
    retry_after_s: int = 1
    """What Overloaded tells the caller to wait."""


@dataclass(frozen=True, slots=True)
class BatchStats:
    """What one handler call was: for metrics."""

    rows: int
    items: int
    queue_wait_s: tuple[float, ...]
    """How long each item waited between submission and the call."""
    compute_s: float
    depth: int
    """Items still waiting when the call began."""


class _Pending(Generic[In, Out]):
    __slots__ = ("future", "item", "rows", "submitted_at")

    def __init__(self, item: In, rows: int, future: asyncio.Future[Out]) -> None:
        self.item = item
        self.rows = rows
        self.future = future
        self.submitted_at = time.perf_counter()


class BatchQueue(Generic[In, Out]):
    """Coalesces :meth:`submit` calls into calls of ``handler`` on lists of items.

    ``handler`` must return one result per item, in order. ``rows_of`` says how many rows
    an item counts for against ``max_batch_size``. ``on_batch`` is told about each call.
    ``is_alone`` says whether the caller is the only request in flight anywhere.
    """

    def __init__(
        self,
        name: str,
        handler: Callable[[Sequence[In]], Sequence[Out]],
        policy: BatchPolicy,
        rows_of: Callable[[In], int] = lambda item: 1,
        on_batch: Callable[[BatchStats], None] | None = None,
        is_alone: Callable[[], bool] | None = None,
    ) -> None:
        self.name = name
        self.handler = handler
        self.policy = policy
        self.rows_of = rows_of
        self.on_batch = on_batch
        self.is_alone = is_alone
        self._pending: deque[_Pending[In, Out]] = deque()
        self._wakeup: asyncio.Event | None = None
        self._worker: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._busy = False
        self._refusal: Callable[[], Exception] | None = None

    @property
    def depth(self) -> int:
        """Items waiting for a handler call."""
        return len(self._pending)

    async def start(self) -> None:
        self._wakeup = asyncio.Event()
        if not self.policy.inline:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"batch-{self.name}")
        self._worker = asyncio.create_task(self._run(), name=f"batch-{self.name}")

    async def stop(self) -> None:
        """Finish what is queued, then stop the worker."""
        while self._pending or self._busy:
            await asyncio.sleep(0.005)
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    def refuse(self, error: Callable[[], Exception]) -> int:
        """From now on fail every submission with ``error()``, those still waiting
        included (a batch being computed finishes); how many were waiting."""
        self._refusal = error
        waiting = 0
        while self._pending:
            entry = self._pending.popleft()
            if not entry.future.done():
                entry.future.set_exception(error())
                waiting += 1
        return waiting

    async def submit(self, item: In) -> Out:
        """The handler's result for ``item``, computed in some batch.

        With an inline handler, an idle queue and a caller alone in the server (see
        ``is_alone``, checked again after one turn of the event loop so that requests
        arriving together see each other), the item runs right here, without the hops
        through the worker task: a lone request at concurrency 1 pays nothing for batching.
        """
        if self._wakeup is None:
            raise RuntimeError("BatchQueue.start() was not called")
        if self._refusal is not None:
            raise self._refusal()
        alone = self.is_alone
        if alone is not None and self.policy.inline and self._is_idle() and alone():
            await asyncio.sleep(0)
            if self._is_idle() and alone():
                return self._run_now(item)
        if len(self._pending) >= self.policy.max_queue_size:
            raise Overloaded(self.name, self.policy.retry_after_s)
        future: asyncio.Future[Out] = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(item, self.rows_of(item), future))
        self._wakeup.set()
        return await future

    def _is_idle(self) -> bool:
        return not self._busy and not self._pending

    def _run_now(self, item: In) -> Out:
        started = time.perf_counter()
        (result,) = self._checked(self.handler([item]), 1)
        if self.on_batch is not None:
            compute_s = time.perf_counter() - started
            self.on_batch(BatchStats(self.rows_of(item), 1, (0.0,), compute_s, 0))
        return result

    def _checked(self, results: Sequence[Out], items: int) -> Sequence[Out]:
        if len(results) != items:
            raise RuntimeError(
                f"batch handler of '{self.name}' returned {len(results)} results for {items} items"
            )
        return results

    async def _run(self) -> None:
        assert self._wakeup is not None
        while True:
            if not self._pending:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            self._busy = True
            try:
                await self._call(await self._collect())
            finally:
                self._busy = False

    async def _collect(self) -> list[_Pending[In, Out]]:
        """Take what is waiting; linger for more only while more keeps arriving."""
        batch: list[_Pending[In, Out]] = []
        rows = self._take(batch, 0)
        limit = self.policy.max_batch_size
        if rows >= limit or self.policy.max_batch_delay_ms <= 0:
            return batch
        deadline = time.perf_counter() + self.policy.max_batch_delay_ms / 1000
        while rows < limit and time.perf_counter() < deadline:
            await asyncio.sleep(0)  # one turn of the loop: let arriving requests submit
            if not self._pending:
                break  # nothing arrived: run now rather than wait on a timer
            rows = self._take(batch, rows)
        return batch

    def _take(self, batch: list[_Pending[In, Out]], rows: int) -> int:
        limit = self.policy.max_batch_size
        pending = self._pending
        while pending and (not batch or rows + pending[0].rows <= limit):
            entry = pending.popleft()
            if entry.future.done():  # the caller went away
                continue
            batch.append(entry)
            rows += entry.rows
        return rows

    async def _call(self, batch: list[_Pending[In, Out]]) -> None:
        if not batch:
            return
        started = time.perf_counter()
        items = [entry.item for entry in batch]
        try:
            if self._executor is None:
                results = self.handler(items)
            else:
                loop = asyncio.get_running_loop()
                results = await loop.run_in_executor(self._executor, self.handler, items)
            self._checked(results, len(items))
        except Exception as exc:
            if len(batch) > 1 and not isinstance(exc, _WHOLE_BATCH):
                # Run each alone, so one bad item fails only its own caller.
                for entry in batch:
                    await self._call([entry])
                return
            _fail(batch[0].future, exc)
            return
        compute_s = time.perf_counter() - started
        for entry, result in zip(batch, results, strict=True):
            _resolve(entry.future, result)
        if self.on_batch is not None:
            self.on_batch(
                BatchStats(
                    rows=sum(entry.rows for entry in batch),
                    items=len(batch),
                    queue_wait_s=tuple(started - entry.submitted_at for entry in batch),
                    compute_s=compute_s,
                    depth=len(self._pending),
                )
            )


#: Failures of the model itself, not of an item: every caller of the batch gets them
#: (re-running each alone would only meet the model restarting).
_WHOLE_BATCH = (ModelCrashed, ModelUnavailable)


def _resolve(future: asyncio.Future[Out], result: Out) -> None:
    if not future.done():
        future.set_result(result)


def _fail(future: asyncio.Future[Out], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
