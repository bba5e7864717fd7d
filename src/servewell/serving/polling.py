"""A background task that re-reads something from the registry at an interval: the
key ring and the traffic policies each keep their table fresh with one."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from servewell.errors import ServewellError

logger = logging.getLogger(__name__)

T = TypeVar("T")


class Poller:
    """Awaits ``tick`` every ``interval_s`` seconds, in one task, between start and stop."""

    def __init__(self, name: str, tick: Callable[[], Awaitable[None]], interval_s: float) -> None:
        self.name = name
        self.tick = tick
        self.interval_s = interval_s
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._forever(), name=self.name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _forever(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            await self.tick()


async def keep_last_good(what: str, refresh: Callable[[], Awaitable[T]]) -> T | None:
    """``refresh()``'s result; None, with a warning, when the registry cannot be read
    (the caller keeps its last good table)."""
    try:
        return await refresh()
    except ServewellError as exc:
        logger.warning("could not refresh %s: %s", what, exc.message)
        return None
