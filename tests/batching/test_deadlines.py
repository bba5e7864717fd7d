"""The queue's deadlines, drops, shedding on a slow queue and bounded stop, on a real
event loop with handlers that block a real thread (no timing assertions: a gate each
test opens itself decides when the handler returns)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence

import anyio
import pytest

from servewell.batching import CANCELLED, DEADLINE, BatchPolicy, BatchQueue
from servewell.core.deadline import Deadline
from servewell.errors import DeadlineExceeded, Overloaded, ShuttingDown

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Gate:
    """A handler that waits, on the queue's thread, until :meth:`open` (or for ever);
    remembers every item it was given."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started = threading.Event()
        self.seen: list[int] = []

    def __call__(self, items: Sequence[int]) -> list[int]:
        self.seen.extend(items)
        self.started.set()
        self.release.wait()
        return list(items)

    async def wait_started(self) -> None:
        with anyio.fail_after(20):
            while not self.started.is_set():
                await asyncio.sleep(0.001)


def _queue(
    handler: Gate, drops: list[str] | None = None, name: str = "m", **policy: float | None
) -> BatchQueue[int, int]:
    return BatchQueue(
        name,
        handler,
        BatchPolicy(max_batch_size=1, **policy),  # type: ignore[arg-type]
        on_drop=None if drops is None else drops.append,
    )


async def test_past_its_deadline_a_waiting_item_fails_and_never_reaches_the_handler() -> None:
    gate, drops = Gate(), []
    queue = _queue(gate, drops)
    await queue.start()
    computing = asyncio.ensure_future(queue.submit(1, Deadline.after_ms(60_000)))
    await gate.wait_started()
    with pytest.raises(DeadlineExceeded) as raised:
        await queue.submit(2, Deadline.after_ms(50))
    assert raised.value.timeout_ms == 50
    assert "did not answer within the deadline of 50 ms" in raised.value.message
    assert drops == [DEADLINE]
    assert queue.depth == 0
    gate.release.set()
    assert await computing == 1
    assert await queue.stop()
    assert gate.seen == [1]  # 2 left the queue when its deadline passed


async def test_a_call_past_its_deadline_fails_its_caller_and_its_result_is_dropped() -> None:
    gate, drops = Gate(), []
    queue = _queue(gate, drops)
    await queue.start()
    with pytest.raises(DeadlineExceeded):
        await queue.submit(1, Deadline.after_ms(50))
    assert gate.seen == [1]
    assert drops == []  # it reached the model: not a drop
    gate.release.set()
    with anyio.fail_after(20):
        assert await queue.submit(3) == 3  # the queue goes on
    assert await queue.stop()


async def test_an_item_already_past_its_deadline_is_refused_without_queueing() -> None:
    gate, drops = Gate(), []
    gate.release.set()
    queue = _queue(gate, drops)
    await queue.start()
    with pytest.raises(DeadlineExceeded):
        await queue.submit(1, Deadline(time.monotonic() - 1, 5))
    assert drops == [DEADLINE]
    assert gate.seen == []
    await queue.stop()


async def test_a_caller_cancelled_while_waiting_leaves_the_queue() -> None:
    gate, drops = Gate(), []
    queue = _queue(gate, drops)
    await queue.start()
    computing = asyncio.ensure_future(queue.submit(1))
    await gate.wait_started()
    waiting = asyncio.ensure_future(queue.submit(2, Deadline.after_ms(60_000)))
    await asyncio.sleep(0)
    assert queue.depth == 1
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert queue.depth == 0
    assert drops == [CANCELLED]
    gate.release.set()
    assert await computing == 1
    assert await queue.stop()
    assert gate.seen == [1]


async def test_a_queue_whose_oldest_item_waited_too_long_sheds_new_ones() -> None:
    gate = Gate()
    queue = _queue(gate, max_queue_wait_ms=20)
    await queue.start()
    computing = asyncio.ensure_future(queue.submit(1))
    await gate.wait_started()
    waiting = asyncio.ensure_future(queue.submit(2))
    await asyncio.sleep(0.1)  # its wait is now past 20 ms, however loaded the machine
    with pytest.raises(Overloaded) as raised:
        await queue.submit(3)
    assert "too slow to take more requests: the oldest waiting has waited" in (raised.value.message)
    gate.release.set()
    assert await computing == 1
    assert await waiting == 2
    with anyio.fail_after(20):
        assert await queue.submit(4) == 4  # empty again: it takes new ones
    assert await queue.stop()


async def test_stop_is_bounded_when_the_handler_hangs() -> None:
    gate = Gate()  # never opened: the call hangs
    queue = _queue(gate, name="hung")
    await queue.start()
    computing = asyncio.ensure_future(queue.submit(1))
    await gate.wait_started()
    waiting = asyncio.ensure_future(queue.submit(2))
    await asyncio.sleep(0)
    with anyio.fail_after(20):
        assert not await queue.stop(timeout_s=0.05)
    for future in (computing, waiting):
        with pytest.raises(ShuttingDown):
            await future
    (thread,) = [t for t in threading.enumerate() if t.name == "batch-hung"]
    assert thread.daemon  # it does not keep the process from exiting
    gate.release.set()
