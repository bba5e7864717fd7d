"""The response cache in the request path: after validation, before the batcher.

Keys are the resolved deployment (name + version number) and the validated input bytes,
so an alias moving to a new version can never serve the old version's answer. Entries
are the model's raw outputs, independent of protocol: a V2 request and a REST request
with the same inputs share one entry.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from servewell.cache import ResponseCache, cache_key
from servewell.settings import CacheSettings

Array = np.ndarray[Any, Any]
Outputs = dict[str, Array]


@dataclass(frozen=True, slots=True)
class Cached:
    outputs: Outputs
    hit: bool
    batch_size: int


class ResponseCacheLayer:
    def __init__(self, cache: ResponseCache, settings: CacheSettings) -> None:
        self.cache = cache
        self.settings = settings

    def is_enabled_for(self, model: str, deterministic: bool = True) -> bool:
        if not self.settings.enabled or not deterministic:
            return False
        override = self.settings.models.get(model)
        return override is None or override.enabled is not False

    def ttl_for(self, model: str) -> float:
        override = self.settings.models.get(model)
        return override.ttl_s if override and override.ttl_s else self.settings.ttl_s

    async def through(
        self,
        model: str,
        version: int,
        inputs: Mapping[str, Array],
        compute: Callable[[], Awaitable[tuple[Outputs, int]]],
        *,
        bypass: bool = False,
    ) -> Cached:
        """The cached answer, or ``compute()``'s (stored for next time).

        ``bypass`` (``Cache-Control: no-cache``) skips the lookup but refreshes the entry.
        A broken entry is a miss. A hit's arrays are read-only: every hit shares them.
        """
        key = cache_key(model, version, inputs)
        if not bypass:
            entry = await self.cache.get(key)
            if entry is not None:
                return Cached(dict(entry), hit=True, batch_size=0)
        outputs, batch_size = await compute()
        await self.cache.set(key, outputs, self.ttl_for(model))
        return Cached(outputs, hit=False, batch_size=batch_size)
