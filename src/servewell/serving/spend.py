"""Each key's LLM spend, kept where every server can read it: the registry database.

:meth:`SpendLedger.add` (after an LLM call's answer) adds the call to an in-memory
table per key, model and UTC day: one dict update, no I/O. Every
``llm_costs.flush_interval_s`` a background task writes the table to the database in
one batch (``registry/spend.SpendStore.add``: counts added, so replicas and workers
never overwrite each other) and re-reads every key's spend since the first of the month.
A budget check (:meth:`spent`) adds what this process has not written yet to what the
database said: exact within one process, and across workers and replicas behind by at
most about one flush interval (what they spent meanwhile). A batch the database refuses
is kept and written with the next; when the database cannot be read the last totals
stand (a key's own calls in this process still count).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from servewell.core.llm_cost import SpendBudget, Usage, day_of
from servewell.registry.spend import SpendRow, SpendStore
from servewell.serving.polling import Poller, keep_last_good

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class _Counts:
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0


Table = dict[tuple[str, str, str], _Counts]
"""(key, model, day) -> counts."""


class SpendLedger:
    def __init__(self, store: SpendStore, interval_s: float = 1.0, clock: Clock = utc_now) -> None:
        self.store = store
        self.interval_s = interval_s
        self.clock = clock
        self._pending: Table = {}
        self._writing: Table = {}
        self._stored: dict[str, dict[str, float]] = {}
        """USD per key and day as the database last said (this month)."""
        self._poller = Poller("servewell-spend", self._tick, interval_s)
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        await keep_last_good("LLM spend", self._read)
        self._poller.start()

    async def close(self) -> None:
        """Stop the task and write what is left."""
        await self._poller.stop()
        await self.flush()

    def add(self, key: str, model: str, usage: Usage, cost_usd: float) -> None:
        """One LLM call's tokens and cost, for the next flush."""
        slot = (key, model, day_of(self.clock()))
        counts = self._pending.get(slot)
        if counts is None:
            counts = self._pending[slot] = _Counts()
        counts.requests += 1
        counts.prompt_tokens += usage.prompt_tokens
        counts.completion_tokens += usage.completion_tokens
        counts.cost_usd += cost_usd

    def spent(self, key: str, budget: SpendBudget, now: datetime) -> float:
        """USD ``key`` spent in the budget's period so far, on every server."""
        first = budget.starts(now).isoformat()
        total = sum(usd for day, usd in self._stored.get(key, {}).items() if day >= first)
        for table in (self._writing, self._pending):
            total += sum(
                counts.cost_usd
                for (name, _model, day), counts in table.items()
                if name == key and day >= first
            )
        return total

    async def flush(self) -> None:
        """Write what was added since the last flush, then re-read the totals."""
        async with self._lock:
            self._writing, self._pending = self._pending, {}
            if self._writing:
                try:
                    await asyncio.to_thread(self.store.add, _rows(self._writing))
                except Exception:
                    logger.warning(
                        "could not write LLM spend (%d rows); kept for the next flush",
                        len(self._writing),
                        exc_info=True,
                    )
                    _merge(self._pending, self._writing)
                    self._writing = {}
                    return
            if await keep_last_good("LLM spend", self._read) is None:
                for (key, _model, day), counts in self._writing.items():  # written: count it
                    days = self._stored.setdefault(key, {})
                    days[day] = days.get(day, 0.0) + counts.cost_usd
            self._writing = {}

    async def _tick(self) -> None:
        await self.flush()

    async def _read(self) -> bool:
        since = budget_window_start(self.clock())
        found = await asyncio.to_thread(self.store.spent_by_day, since)
        stored: dict[str, dict[str, float]] = {}
        for (key, day), usd in found.items():
            stored.setdefault(key, {})[day] = usd
        self._stored = stored
        return True


def budget_window_start(now: datetime) -> str:
    """The earliest day any budget's period reaches back to: the first of the month."""
    return SpendBudget(1.0, "month").starts(now).isoformat()


def _rows(table: Table) -> list[SpendRow]:
    return [
        SpendRow(key, model, day, c.requests, c.prompt_tokens, c.completion_tokens, c.cost_usd)
        for (key, model, day), c in table.items()
    ]


def _merge(into: Table, table: Table) -> None:
    for slot, counts in table.items():
        kept = into.setdefault(slot, _Counts())
        kept.requests += counts.requests
        kept.prompt_tokens += counts.prompt_tokens
        kept.completion_tokens += counts.completion_tokens
        kept.cost_usd += counts.cost_usd
