"""Calls made during one turn of the event loop, run together on the next.

For work whose cost is mostly per call rather than per item, such as a round trip to
Redis: every coroutine that submits during one turn of the loop shares one call of the
handler (one pipeline, one ``MGET``), scheduled with ``call_soon``, so it never waits on
a timer and a lone call goes out on the very next turn. One batch is in flight at a
time: what is submitted meanwhile forms the next batch, which starts as soon as the
previous one is done. So batches grow with load, and batches run in submission order
(a read submitted after a write sees it).

The handler takes the items in submission order and returns one result for each (checked);
when it raises, every call of that batch raises the same exception.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

In = TypeVar("In")
Out = TypeVar("Out")


class TurnBatcher(Generic[In, Out]):
    def __init__(self, handler: Callable[[list[In]], Awaitable[list[Out]]]) -> None:
        self.handler = handler
        self._items: list[In] = []
        self._futures: list[asyncio.Future[Out] | None] = []
        self._running: asyncio.Task[None] | None = None

    async def submit(self, item: In) -> Out:
        """The handler's result for ``item``, run with the rest of this turn's items."""
        return await self.submit_nowait(item)

    def submit_nowait(self, item: In) -> asyncio.Future[Out]:
        """Queue ``item`` and return its future at once (for work nobody waits on)."""
        future: asyncio.Future[Out] = asyncio.get_running_loop().create_future()
        if not self._items and self._running is None:
            future.get_loop().call_soon(self._flush)
        self._items.append(item)
        self._futures.append(future)
        return future

    def push(self, item: In) -> None:
        """Queue ``item`` for work nobody waits on, without a future (its result and any
        failure are the handler's to deal with)."""
        if not self._items and self._running is None:
            asyncio.get_running_loop().call_soon(self._flush)
        self._items.append(item)
        self._futures.append(None)

    async def drain(self) -> None:
        """Wait until every batch submitted so far has run."""
        while self._items or self._running is not None:
            if self._running is not None:
                await asyncio.wait([self._running])
            else:
                await asyncio.sleep(0)

    def _flush(self) -> None:
        if self._running is not None or not self._items:
            return
        items, futures = self._items, self._futures
        self._items, self._futures = [], []
        self._running = asyncio.ensure_future(self._run(items, futures))
        self._running.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._running = None
        if self._items:  # what came meanwhile: on the next turn, with its own batch
            task.get_loop().call_soon(self._flush)

    async def _run(self, items: list[In], futures: list[asyncio.Future[Out] | None]) -> None:
        try:
            results = await self.handler(items)
            if len(results) != len(items):
                raise RuntimeError(
                    f"batch handler returned {len(results)} results for {len(items)} items"
                )
        except asyncio.CancelledError:
            for future in futures:
                if future is not None:
                    future.cancel()
            raise
        except Exception as exc:
            for future in futures:
                if future is not None and not future.done():
                    future.set_exception(exc)
            return
        for future, result in zip(futures, results, strict=True):
            if future is not None and not future.done():
                future.set_result(result)
