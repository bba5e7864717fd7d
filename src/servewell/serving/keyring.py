"""API keys as every worker sees them: the whole key table, re-read in the background.

The table is small, so each worker keeps all of it in memory and checks a key with one
dict lookup and a constant-time hash comparison: no database round trip per request.
A background task re-reads it every ``refresh_interval_s`` (0.5 s by default), so a
revocation reaches every worker and replica within a second.

Tokens that passed the check are remembered (``_verified``) until the table changes, so
a key's next request costs one dict lookup instead of a regex match and a hash. The
lookup hashes the whole token with Python's per-process random string hash, which tells
an attacker nothing about a stored secret; unknown tokens are never remembered.
"""

from __future__ import annotations

import asyncio
import logging

from servewell.core.apikey import parse_key, secret_matches
from servewell.errors import Unauthorized
from servewell.registry.keys import ApiKey, ApiKeyStore
from servewell.serving.polling import Poller, keep_last_good

logger = logging.getLogger(__name__)

#: Verified tokens remembered at most (one per live key is what it takes).
MAX_VERIFIED = 10_000


class KeyRing:
    def __init__(self, store: ApiKeyStore, refresh_interval_s: float = 0.5) -> None:
        self.store = store
        self.refresh_interval_s = refresh_interval_s
        self._keys: dict[str, ApiKey] = {}
        self._by_name: dict[str, ApiKey] = {}
        self._verified: dict[str, ApiKey] = {}
        self._poller = Poller("servewell-keyring", self._refresh_quietly, refresh_interval_s)

    async def start(self) -> None:
        await self.refresh()
        self._poller.start()

    async def stop(self) -> None:
        await self._poller.stop()

    async def refresh(self) -> None:
        keys = await asyncio.to_thread(self.store.list, True)
        table = {key.key_id: key for key in keys}
        if table != self._keys:
            self._keys = table
            self._by_name = {key.name: key for key in keys}
            self._verified = {}

    def authenticate(self, token: str | None) -> ApiKey:
        """The key ``token`` names; Unauthorized when missing, unknown or revoked."""
        if token is not None:
            known = self._verified.get(token)
            if known is not None:
                return known
        if not token:
            raise Unauthorized(
                "an API key is required: send 'Authorization: Bearer <key>' or 'X-API-Key'"
            )
        parsed = parse_key(token)
        key = self._keys.get(parsed[0]) if parsed else None
        if parsed is None or key is None or not secret_matches(parsed[1], key.secret_hash):
            raise Unauthorized("the API key is not valid")
        if key.is_revoked:
            raise Unauthorized(f"the API key '{key.name}' was revoked")
        if len(self._verified) < MAX_VERIFIED:
            self._verified[token] = key
        return key

    def active(self, key_id: str) -> ApiKey:
        """The key with id ``key_id`` as the table last read holds it (a dashboard
        session names its key by id); Unauthorized when unknown or revoked."""
        key = self._keys.get(key_id)
        if key is None:
            raise Unauthorized("the API key is not valid")
        if key.is_revoked:
            raise Unauthorized(f"the API key '{key.name}' was revoked")
        return key

    def named(self, name: str) -> ApiKey | None:
        """The active key called ``name`` (a caller the guard admitted), or None."""
        return self._by_name.get(name)

    async def _refresh_quietly(self) -> None:
        await keep_last_good("API keys", self.refresh)
