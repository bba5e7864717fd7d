"""Signed-out dashboard sessions as every worker sees them: the registry's list
(``registry/ended_sessions.py``), re-read in the background the way the key ring
re-reads keys, so checking a session costs one set lookup and a sign-out on one
worker or replica reaches every other within ``refresh_interval_s`` (0.5 s by
default). The worker that signs a session out refuses it at once."""

from __future__ import annotations

import asyncio

from servewell.registry.ended_sessions import EndedSessionStore
from servewell.serving.polling import Poller, keep_last_good


class EndedSessions:
    def __init__(self, store: EndedSessionStore, refresh_interval_s: float = 0.5) -> None:
        self.store = store
        self._ended: frozenset[str] = frozenset()
        self._poller = Poller("servewell-ended-sessions", self._refresh_quietly, refresh_interval_s)

    async def start(self) -> None:
        await self.refresh()
        self._poller.start()

    async def stop(self) -> None:
        await self._poller.stop()

    async def refresh(self) -> None:
        self._ended = await asyncio.to_thread(self.store.active)

    def is_ended(self, nonce: str) -> bool:
        return nonce in self._ended

    async def end(self, nonce: str, expires_at: float) -> None:
        """Record the session ``nonce`` as signed out (until ``expires_at``, when its
        cookie expires anyway) for every process, and refuse it here at once."""
        await asyncio.to_thread(self.store.end, nonce, expires_at)
        self._ended = self._ended | {nonce}

    async def _refresh_quietly(self) -> None:
        await keep_last_good("signed-out dashboard sessions", self.refresh)
