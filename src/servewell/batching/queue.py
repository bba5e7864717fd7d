"""A bounded queue that turns concurrent submissions into batched calls.

One worker task per queue takes what is waiting (up to ``max_batch_size`` rows) and
calls the handler once for all of it. It never waits on a timer while it is idle, so a
lone request runs at once; while the handler computes, new submissions pile up and form
the next batch, which is how batches grow with load. Before a call it may linger, at
most ``max_batch_delay_ms``, but only while more work keeps arriving between two turns
of the event loop.

The handler is a plain function on a whole batch. It runs on the event loop when it is
cheap (``inline``) and on the queue's own daemon thread otherwise (``thread.py``), so a
slow model never stalls the loop and a hung one never keeps the process from exiting.
When the queue is full, or its oldest item has waited longer than ``max_queue_wait_ms``,
a submission fails at once with :class:`~servewell.errors.Overloaded` instead of waiting
without bound; once :meth:`BatchQueue.refuse` is called (a server's drain deadline),
every submission fails, those still waiting included.

A submission may carry a :class:`~servewell.core.deadline.Deadline`: one timer handle on
the loop fails it at that time (with ``timed_out(deadline)``), and if it is still waiting
it leaves the queue then, never reaching the handler. A caller cancelled while waiting
(its client went away) leaves the queue at once too. Both are told to ``on_drop``. A
call already running cannot be stopped: its caller gets the error, its result is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from servewell.batching.thread import ModelThread
from servewell.core.deadline import Deadline
from servewell.errors import (
    DeadlineExceeded,
    ModelCrashed,
    ModelUnavailable,
    Overloaded,
    ShuttingDown,
)

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
    max_queue_wait_ms: float | None = None
    """Once the oldest waiting submission has waited longer, new ones are refused with
    Overloaded (None: only ``max_queue_size`` bounds the queue)."""
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


#: Why a submission left the queue without reaching the handler (``on_drop``).
DEADLINE = "deadline"
CANCELLED = "cancelled"


class _Pending(Generic[In, Out]):
    __slots__ = ("future", "item", "queued", "rows", "submitted_at", "timer")

    def __init__(self, item: In, rows: int, future: asyncio.Future[Out]) -> None:
        self.item = item
        self.rows = rows
        self.future = future
        self.submitted_at = time.perf_counter()
        self.queued = True
        """In the queue still (not taken into a batch, expired or refused)."""
        self.timer: asyncio.TimerHandle | None = None


class BatchQueue(Generic[In, Out]):
    """Coalesces :meth:`submit` calls into calls of ``handler`` on lists of items.

    ``handler`` must return one result per item, in order. ``rows_of`` says how many rows
    an item counts for against ``max_batch_size``. ``on_batch`` is told about each call.
    ``is_alone`` says whether the caller is the only request in flight anywhere.
    ``timed_out(deadline)`` is the error of a submission past its deadline; ``on_drop``
    hears :data:`DEADLINE` or :data:`CANCELLED` for each one that left without a call.
    """

    def __init__(
        self,
        name: str,
        handler: Callable[[Sequence[In]], Sequence[Out]],
        policy: BatchPolicy,
        rows_of: Callable[[In], int] = lambda item: 1,
        on_batch: Callable[[BatchStats], None] | None = None,
        is_alone: Callable[[], bool] | None = None,
        timed_out: Callable[[Deadline], Exception] | None = None,
        on_drop: Callable[[str], None] | None = None,
    ) -> None:
        self.name = name
        self.handler = handler
        self.policy = policy
        self.rows_of = rows_of
        self.on_batch = on_batch
        self.is_alone = is_alone
        self.timed_out = timed_out or (lambda deadline: DeadlineExceeded(name, deadline.timeout_ms))
        self.on_drop = on_drop
        wait_ms = policy.max_queue_wait_ms
        self._max_wait_s = None if wait_ms is None else wait_ms / 1000
        self._pending: deque[_Pending[In, Out]] = deque()
        self._wakeup: asyncio.Event | None = None
        self._worker: asyncio.Task[None] | None = None
        self._thread: ModelThread | None = None
        self._busy = False
        self._computing: list[_Pending[In, Out]] = []
        self._refusal: Callable[[], Exception] | None = None

    @property
    def depth(self) -> int:
        """Items waiting for a handler call."""
        return len(self._pending)

    async def start(self) -> None:
        self._wakeup = asyncio.Event()
        if not self.policy.inline:
            self._thread = ModelThread(f"batch-{self.name}")
            self._thread.start()
        self._worker = asyncio.create_task(self._run(), name=f"batch-{self.name}")

    async def stop(self, timeout_s: float = 30.0) -> bool:
        """Finish what is queued, for at most ``timeout_s`` and only while a caller still
        waits for it, then stop the worker; whether all of it finished. If not (a model
        call that hangs), what waits and what runs fail with ShuttingDown and the call is
        left on its daemon thread."""
        loop = asyncio.get_running_loop()
        give_up_at = loop.time() + timeout_s
        if self._pending or self._busy:
            logger.info("stopping %s: waiting at most %.3g s for its calls", self.name, timeout_s)
        while self._is_awaited() and loop.time() < give_up_at:
            await asyncio.sleep(0.005)
        finished = not (self._pending or self._busy)
        if not finished:
            refusal = self._refusal or (lambda: ShuttingDown(self.policy.retry_after_s))
            self.refuse(refusal)
            for entry in self._computing:
                _fail(entry.future, refusal())
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None
        if self._thread is not None:
            finished = self._thread.stop(1.0 if finished else 0.0) and finished
            self._thread = None
        return finished

    def refuse(self, error: Callable[[], Exception]) -> int:
        """From now on fail every submission with ``error()``, those still waiting
        included (a batch being computed finishes); how many were waiting."""
        self._refusal = error
        waiting = 0
        while self._pending:
            entry = self._pending.popleft()
            entry.queued = False
            if not entry.future.done():
                entry.future.set_exception(error())
                waiting += 1
        return waiting

    async def submit(self, item: In, deadline: Deadline | None = None) -> Out:
        """The handler's result for ``item``, computed in some batch; past ``deadline``,
        ``timed_out(deadline)`` is raised instead.

        With an inline handler, an idle queue and a caller alone in the server (see
        ``is_alone``, checked again after one turn of the event loop so that requests
        arriving together see each other), the item runs right here, without the hops
        through the worker task: a lone request at concurrency 1 pays nothing for batching
        (nor for a timer: an inline call is shorter than any deadline worth setting).
        """
        if self._wakeup is None:
            raise RuntimeError("BatchQueue.start() was not called")
        if self._refusal is not None:
            raise self._refusal()
        loop = asyncio.get_running_loop()
        if deadline is not None and deadline.at <= loop.time():
            self._dropped(DEADLINE)
            raise self.timed_out(deadline)
        alone = self.is_alone
        if alone is not None and self.policy.inline and self._is_idle() and alone():
            await asyncio.sleep(0)
            if self._is_idle() and alone():
                return self._run_now(item)
        self._admit()
        future: asyncio.Future[Out] = loop.create_future()
        entry = _Pending(item, self.rows_of(item), future)
        if deadline is not None:
            entry.timer = loop.call_at(deadline.at, self._expire, entry, deadline)
        self._pending.append(entry)
        self._wakeup.set()
        try:
            return await entry.future
        except asyncio.CancelledError:
            if entry.queued:  # the caller gave up waiting: no call for nobody
                self._remove(entry)
                self._dropped(CANCELLED)
            raise
        finally:
            if entry.timer is not None:
                entry.timer.cancel()

    def _admit(self) -> None:
        """Refuse a new submission when the queue is full, or too slow to serve it."""
        pending = self._pending
        if len(pending) >= self.policy.max_queue_size:
            raise Overloaded(self.name, self.policy.retry_after_s)
        max_wait_s = self._max_wait_s
        if max_wait_s is not None and pending:
            waited_s = time.perf_counter() - pending[0].submitted_at
            if waited_s > max_wait_s:
                raise Overloaded(
                    self.name, self.policy.retry_after_s, oldest_wait_ms=waited_s * 1000
                )

    def _expire(self, entry: _Pending[In, Out], deadline: Deadline) -> None:
        """The deadline's timer: fail the caller; out of the queue if it still waits."""
        if entry.future.done():
            return
        if entry.queued:
            self._remove(entry)
            self._dropped(DEADLINE)
        entry.future.set_exception(self.timed_out(deadline))

    def _remove(self, entry: _Pending[In, Out]) -> None:
        entry.queued = False
        self._pending.remove(entry)  # near the front, mostly: the oldest expire first

    def _dropped(self, reason: str) -> None:
        if self.on_drop is not None:
            self.on_drop(reason)

    def _is_awaited(self) -> bool:
        """Whether a caller still waits for an answer: one queued, or one of the batch
        being formed or computed. A hung call whose callers all got their error (their
        deadline) is waited for no more."""
        if any(not entry.future.done() for entry in self._pending):
            return True
        if not self._busy:
            return False
        computing = self._computing
        return not computing or any(not entry.future.done() for entry in computing)

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
            entry.queued = False
            if entry.future.done():  # failed meanwhile: nobody waits for it
                continue
            batch.append(entry)
            rows += entry.rows
        return rows

    async def _call(self, batch: list[_Pending[In, Out]]) -> None:
        batch = self._still_awaited(batch)
        if not batch:
            return
        started = time.perf_counter()
        items = [entry.item for entry in batch]
        self._computing = batch
        try:
            if self._thread is None:
                results = self.handler(items)
            else:
                results = await self._thread.run(self.handler, items)
            self._checked(results, len(items))
        except Exception as exc:
            if len(batch) > 1 and not isinstance(exc, _WHOLE_BATCH):
                # Run each alone, so one bad item fails only its own caller (and those
                # whose deadline passed meanwhile not at all).
                for entry in batch:
                    if not entry.future.done():
                        await self._call([entry])
                return
            for entry in batch:  # one item, or a failure of the model itself: all get it
                _fail(entry.future, exc)
            return
        finally:
            self._computing = []
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

    def _still_awaited(self, batch: list[_Pending[In, Out]]) -> list[_Pending[In, Out]]:
        """The batch without the items whose deadline passed, or whose caller was
        cancelled, while it lingered for more work: they are dropped here."""
        if not any(entry.future.done() for entry in batch):
            return batch
        for entry in batch:
            if entry.future.done():
                self._dropped(CANCELLED if entry.future.cancelled() else DEADLINE)
        return [entry for entry in batch if not entry.future.done()]


#: Failures of the model itself, not of an item: every caller of the batch gets them
#: (re-running each alone would only meet the model restarting).
_WHOLE_BATCH = (ModelCrashed, ModelUnavailable)


def _resolve(future: asyncio.Future[Out], result: Out) -> None:
    if not future.done():
        future.set_result(result)


def _fail(future: asyncio.Future[Out], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
