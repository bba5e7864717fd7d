"""TurnBatcher: the calls of one event-loop turn share one handler call."""

from __future__ import annotations

import asyncio

import pytest

from servewell.batching.turn import TurnBatcher


@pytest.mark.anyio
async def test_calls_of_one_turn_share_one_handler_call() -> None:
    batches: list[list[int]] = []

    async def double(items: list[int]) -> list[int]:
        batches.append(items)
        return [item * 2 for item in items]

    batcher = TurnBatcher(double)
    assert await asyncio.gather(*(batcher.submit(item) for item in range(5))) == [0, 2, 4, 6, 8]
    assert await batcher.submit(7) == 14  # a lone call goes out on the next turn
    assert batches == [[0, 1, 2, 3, 4], [7]]


@pytest.mark.anyio
async def test_a_failing_handler_fails_every_call_of_its_batch() -> None:
    async def broken(items: list[int]) -> list[int]:
        raise ConnectionError("down")

    async def short(items: list[int]) -> list[int]:
        return items[:1]

    for handler in (broken, short):
        batcher = TurnBatcher(handler)
        results = await asyncio.gather(batcher.submit(1), batcher.submit(2), return_exceptions=True)
        assert all(isinstance(result, ConnectionError | RuntimeError) for result in results)


@pytest.mark.anyio
async def test_drain_waits_for_work_nobody_awaits() -> None:
    done: list[int] = []

    async def record(items: list[int]) -> list[None]:
        await asyncio.sleep(0.01)
        done.extend(items)
        return [None] * len(items)

    batcher = TurnBatcher(record)
    for item in range(3):
        batcher.submit_nowait(item)
    await batcher.drain()
    assert done == [0, 1, 2]


@pytest.mark.anyio
async def test_one_batch_in_flight_the_next_forms_meanwhile() -> None:
    batches: list[list[int]] = []
    release = asyncio.Event()

    async def slow(items: list[int]) -> list[int]:
        batches.append(items)
        await release.wait()
        return items

    batcher = TurnBatcher(slow)
    first = asyncio.ensure_future(batcher.submit(0))
    await asyncio.sleep(0.01)  # the first batch is in flight, and stays there
    later = [asyncio.ensure_future(batcher.submit(item)) for item in (1, 2, 3)]
    await asyncio.sleep(0.01)
    assert batches == [[0]]
    release.set()
    assert await asyncio.gather(first, *later) == [0, 1, 2, 3]
    assert batches == [[0], [1, 2, 3]]


@pytest.mark.anyio
async def test_pushed_items_ride_along_without_futures() -> None:
    """``push`` is for writes nobody waits on: in order with the turn's other items, no
    result to collect, and a failing batch still fails only the calls that wait."""
    batches: list[list[int]] = []

    async def record(items: list[int]) -> list[int]:
        batches.append(items)
        if 13 in items:
            raise ConnectionError("down")
        return items

    batcher = TurnBatcher(record)
    batcher.push(1)
    waited = batcher.submit_nowait(2)
    batcher.push(3)
    assert await waited == 2
    batcher.push(13)
    failed = batcher.submit_nowait(4)
    with pytest.raises(ConnectionError):
        await failed
    await batcher.drain()
    assert batches == [[1, 2, 3], [13, 4]]
