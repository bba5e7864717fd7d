"""Traffic policies as every worker sees them, re-read in the background.

Like the key ring (``serving/keyring.py``): each worker keeps every model's policy in
memory, so the request path's look-up is one dict get; a background task polls the
registry's routing revision every ``refresh_interval_s`` (0.5 s by default) and
re-reads the policies only when it changed, so a ``servewell traffic split`` (or an
alias move, whose revision is part of it) reaches every worker and replica within a
second. After each change it awaits :attr:`TrafficPolicies.on_change`: the router
(``serving/routing.py``) compiles the policies into the routes the resolve step reads.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from servewell.core.traffic import TrafficPolicy
from servewell.registry.traffic import RoutingRevision, TrafficStore
from servewell.serving.polling import Poller, keep_last_good

logger = logging.getLogger(__name__)


class TrafficPolicies:
    def __init__(self, store: TrafficStore, refresh_interval_s: float = 0.5) -> None:
        self.store = store
        self.refresh_interval_s = refresh_interval_s
        self.revision: RoutingRevision | None = None
        """The routing revision the table reflects; None before the first read."""
        self._policies: dict[str, TrafficPolicy] = {}
        self._poller = Poller("servewell-traffic", self._poll_once, refresh_interval_s)
        self.on_change: Callable[[], Awaitable[None]] | None = None
        """Awaited after every read that changed the table (and after the first), in the
        refreshing task: one at a time, never beside another refresh."""

    async def start(self) -> None:
        """Read the policies (and apply them: :attr:`on_change`), then poll."""
        await self._poll_once()
        self._poller.start()

    async def stop(self) -> None:
        await self._poller.stop()

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

    async def _poll_once(self) -> None:
        changed = await keep_last_good("traffic policies", self.refresh)
        if changed and self.on_change is not None:
            try:
                await self.on_change()
            except Exception:  # the routes stay as they were; the next change retries
                logger.exception("could not apply the traffic policies")
