"""Traffic policies as every worker sees them, re-read in the background (not wired yet).

Like the key ring (``serving/keyring.py``): each worker keeps every model's policy in
memory, so the request path's look-up is one dict get; a background task polls the
registry's routing revision every ``refresh_interval_s`` (0.5 s by default) and
re-reads the policies only when it changed, so a ``servewell traffic split`` (or an
alias move, whose revision is part of it) reaches every worker and replica within a
second. The resolve step will read :meth:`TrafficPolicies.policy` and hand the policy
to ``core/assignment.assign``; docs/architecture.md says what remains.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from servewell.core.traffic import TrafficPolicy
from servewell.errors import ServewellError
from servewell.registry.traffic import RoutingRevision, TrafficStore

logger = logging.getLogger(__name__)


class TrafficPolicies:
    def __init__(self, store: TrafficStore, refresh_interval_s: float = 0.5) -> None:
        self.store = store
        self.refresh_interval_s = refresh_interval_s
        self.revision: RoutingRevision | None = None
        """The routing revision the table reflects; None before the first read."""
        self._policies: dict[str, TrafficPolicy] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.refresh()
        self._task = asyncio.create_task(self._refresh_forever(), name="servewell-traffic")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def policy(self, model: str) -> TrafficPolicy | None:
        """``model``'s policy as last read, or None (requests resolve as without one)."""
        return self._policies.get(model)

    async def refresh(self) -> bool:
        """Re-read the policies if the registry's routing revision moved; whether it did."""
        revision = await asyncio.to_thread(self.store.revision)
        if revision == self.revision:
            return False
        # Revision first, then the policies: a change in between is read now and again
        # at the next poll, never missed.
        policies = await asyncio.to_thread(self.store.list)
        self._policies = {policy.model: policy for policy in policies}
        self.revision = revision
        return True

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_interval_s)
            try:
                await self.refresh()
            except ServewellError as exc:  # keep the last good table; say so
                logger.warning("could not refresh traffic policies: %s", exc.message)
