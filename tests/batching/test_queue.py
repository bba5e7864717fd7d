from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import anyio
import pytest

from servewell.batching import BatchPolicy, BatchQueue, BatchStats
from servewell.errors import ModelCrashed, ModelUnavailable, Overloaded

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Recorder:
    """A handler that doubles numbers and remembers each batch it saw."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.threads: set[int] = set()

    def __call__(self, items: Sequence[int]) -> list[int]:
        self.batches.append(list(items))
        self.threads.add(threading.get_ident())
        if any(item < 0 for item in items):
            raise ValueError(f"negative item in {list(items)}")
        return [item * 2 for item in items]


async def test_a_lone_submission_runs_alone_and_at_once() -> None:
    handler = Recorder()
    queue: BatchQueue[int, int] = BatchQueue("m", handler, BatchPolicy(max_batch_delay_ms=10_000))
    await queue.start()
    try:
        assert await queue.submit(21) == 42
    finally:
        await queue.stop()
    assert handler.batches == [[21]]


async def test_concurrent_submissions_share_one_call() -> None:
    handler = Recorder()
    stats: list[BatchStats] = []
    queue: BatchQueue[int, int] = BatchQueue("m", handler, BatchPolicy(), on_batch=stats.append)
    await queue.start()
    try:
        results = await asyncio.gather(*(queue.submit(i) for i in range(10)))
    finally:
        await queue.stop()
    assert results == [i * 2 for i in range(10)]
    assert handler.batches == [list(range(10))]
    assert stats[0].rows == 10
    assert stats[0].items == 10
    assert len(stats[0].queue_wait_s) == 10


async def test_batches_hold_at_most_max_batch_size_rows() -> None:
    handler = Recorder()
    queue: BatchQueue[int, int] = BatchQueue(
        "m", handler, BatchPolicy(max_batch_size=5), rows_of=lambda item: 2
    )
    await queue.start()
    try:
        await asyncio.gather(*(queue.submit(i) for i in range(5)))
    finally:
        await queue.stop()
    assert [len(batch) for batch in handler.batches] == [2, 2, 1]


async def test_a_full_queue_sheds_instead_of_waiting() -> None:
    release = threading.Event()

    def slow(items: Sequence[int]) -> list[int]:
        release.wait(10)
        return list(items)

    queue: BatchQueue[int, int] = BatchQueue(
        "busy", slow, BatchPolicy(max_batch_size=1, max_queue_size=2, retry_after_s=3)
    )
    await queue.start()
    running = asyncio.ensure_future(queue.submit(0))
    await asyncio.sleep(0.05)  # the worker took it: the queue is empty again
    waiting = [asyncio.ensure_future(queue.submit(i)) for i in (1, 2)]
    await asyncio.sleep(0)
    with pytest.raises(Overloaded) as caught:
        await queue.submit(3)
    assert caught.value.retry_after_s == 3
    release.set()
    assert await asyncio.gather(running, *waiting) == [0, 1, 2]
    await queue.stop()


async def test_one_bad_item_fails_only_its_own_caller() -> None:
    handler = Recorder()
    queue: BatchQueue[int, int] = BatchQueue("m", handler, BatchPolicy())
    await queue.start()
    try:
        results = await asyncio.gather(
            queue.submit(1), queue.submit(-1), queue.submit(3), return_exceptions=True
        )
    finally:
        await queue.stop()
    assert results[0] == 2
    assert results[2] == 6
    assert isinstance(results[1], ValueError)
    assert handler.batches == [[1, -1, 3], [1], [-1], [3]]


@pytest.mark.parametrize(
    "failure",
    [ModelCrashed("m", 1, "exit status 1"), ModelUnavailable("m", 1, "restarting", 1)],
)
async def test_a_failure_of_the_model_itself_reaches_every_caller_of_the_batch(
    failure: Exception,
) -> None:
    """A crashed or restarting model fails the whole batch at once: no caller of it is
    left waiting (without a deadline, for ever)."""
    calls: list[list[int]] = []

    def crashing(items: Sequence[int]) -> list[int]:
        calls.append(list(items))
        raise failure

    queue: BatchQueue[int, int] = BatchQueue("m", crashing, BatchPolicy())
    await queue.start()
    try:
        with anyio.fail_after(10):
            results = await asyncio.gather(
                *(queue.submit(i) for i in range(5)), return_exceptions=True
            )
    finally:
        await queue.stop()
    assert calls == [[0, 1, 2, 3, 4]]
    assert results == [failure] * 5


async def test_a_handler_that_loses_results_is_an_error() -> None:
    queue: BatchQueue[int, int] = BatchQueue("m", lambda items: [], BatchPolicy())
    await queue.start()
    try:
        with pytest.raises(RuntimeError, match="returned 0 results for 1 items"):
            await queue.submit(1)
    finally:
        await queue.stop()


@pytest.mark.parametrize("inline", [True, False])
async def test_where_the_handler_runs(inline: bool) -> None:
    handler = Recorder()
    queue: BatchQueue[int, int] = BatchQueue("m", handler, BatchPolicy(inline=inline))
    await queue.start()
    try:
        await queue.submit(1)
    finally:
        await queue.stop()
    assert (handler.threads == {threading.get_ident()}) is inline


async def test_the_loop_stays_free_while_a_slow_handler_computes() -> None:
    release = threading.Event()

    def slow(items: Sequence[int]) -> list[int]:
        release.wait(10)
        return list(items)

    queue: BatchQueue[int, int] = BatchQueue("slow", slow, BatchPolicy())
    await queue.start()
    pending = asyncio.ensure_future(queue.submit(1))
    ticks = 0
    for _ in range(5):
        await asyncio.sleep(0.001)  # the loop keeps turning while the model computes
        ticks += 1
    assert not pending.done()
    release.set()
    assert await pending == 1
    assert ticks == 5
    await queue.stop()


async def test_stop_finishes_what_is_queued() -> None:
    handler = Recorder()
    queue: BatchQueue[int, int] = BatchQueue("m", handler, BatchPolicy(max_batch_size=1))
    await queue.start()
    futures = [asyncio.ensure_future(queue.submit(i)) for i in range(3)]
    await asyncio.sleep(0)
    await queue.stop()
    assert [future.result() for future in futures] == [0, 2, 4]


async def test_refuse_fails_what_waits_and_what_comes_but_lets_a_running_batch_finish() -> None:
    started, release = threading.Event(), threading.Event()

    def slow(items: Sequence[int]) -> list[int]:
        started.set()
        release.wait(10)
        return list(items)

    queue: BatchQueue[int, int] = BatchQueue("slow", slow, BatchPolicy(max_batch_size=1))
    await queue.start()
    running = asyncio.ensure_future(queue.submit(1))
    with anyio.fail_after(10):
        while not started.is_set():  # the worker took it and computes
            await asyncio.sleep(0.001)
    waiting = [asyncio.ensure_future(queue.submit(i)) for i in (2, 3)]
    await asyncio.sleep(0)
    assert queue.refuse(lambda: Overloaded("slow")) == 2
    with pytest.raises(Overloaded):
        await queue.submit(4)
    release.set()
    assert await running == 1
    for future in waiting:
        with pytest.raises(Overloaded):
            await future
    await queue.stop()


async def test_a_lone_caller_runs_right_away_on_an_idle_inline_queue() -> None:
    handler = Recorder()
    stats: list[BatchStats] = []
    active = {"requests": 1}
    queue: BatchQueue[int, int] = BatchQueue(
        "m",
        handler,
        BatchPolicy(inline=True),
        on_batch=stats.append,
        is_alone=lambda: active["requests"] <= 1,
    )
    await queue.start()
    try:
        assert await queue.submit(4) == 8

        async def request(value: int) -> int:
            active["requests"] += 1
            try:
                return await queue.submit(value)
            finally:
                active["requests"] -= 1

        # Requests that arrive together batch as usual.
        active["requests"] = 0
        assert await asyncio.gather(request(1), request(2)) == [2, 4]
    finally:
        await queue.stop()
    assert [sorted(batch) for batch in handler.batches] == [[4], [1, 2]]
    assert [s.items for s in stats] == [1, 2]
