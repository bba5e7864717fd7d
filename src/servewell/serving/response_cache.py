"""The response cache in the request path: in front of decoding, validation and the
model.

A key is the resolved deployment (name + version number) plus a hash of the request's
bytes as the protocol adapter read them (``cache.cache_key``), so an alias moving to a
new version can never serve the old version's answer. An entry is the whole encoded
answer: a hit skips decoding, validation, the model, the output filters and encoding,
and with the in-process backend it can be answered without leaving the HTTP protocol
(``SyncResponseCache.peek``).

For a model with ``cache`` in its ``fallbacks``, each answer is also kept stale for
``cache.stale_ttl_s`` (:meth:`ResponseCacheLayer.get_stale` reads it, for
``serving.fallback``); other models' entries expire as before.
"""

from __future__ import annotations

from servewell.cache import ResponseCache, SyncResponseCache, cache_key
from servewell.registry.records import ModelVersion
from servewell.settings import Settings
from servewell.settings.resilience import CacheFallback


class ResponseCacheLayer:
    def __init__(
        self,
        cache: ResponseCache,
        settings: Settings,
        sync: SyncResponseCache | None = None,
    ) -> None:
        self.cache = cache
        self.settings = settings
        # Answers are stored filtered and after the input limits (a Redis cache outlives a
        # server and is shared by replicas): a model's filter rule and the limits are part
        # of its keys.
        self._limits_tag = settings.validation.model_dump_json().encode()
        self.sync = sync
        """``cache`` when it answers without awaiting (``bootstrap`` knows), else None."""
        self._ttls: dict[str, tuple[float, float]] = {}
        self._evictions_seen = 0
        # Per served version (by identity; a few): whether the cache is on, the policy tag.
        self._versions: dict[int, tuple[ModelVersion, bool, bytes]] = {}

    def is_enabled_for(self, model: str, deterministic: bool = True) -> bool:
        return deterministic and self.settings.model(model).cache.enabled

    def ttl_for(self, model: str) -> float:
        return self._ttls_for(model)[0]

    def _ttls_for(self, model: str) -> tuple[float, float]:
        """How long a model's answers are fresh, and kept stale (0: not at all)."""
        ttls = self._ttls.get(model)
        if ttls is None:  # asked once per model: every stored answer needs it
            resolved = self.settings.model(model)
            keeps_stale = any(
                isinstance(target, CacheFallback) for target in resolved.resilience.fallbacks
            )
            stale_ttl_s = self.settings.cache.stale_ttl_s if keeps_stale else 0.0
            ttls = self._ttls[model] = (resolved.cache.ttl_s, stale_ttl_s)
        return ttls

    def key_for(
        self,
        version: ModelVersion,
        protocol: str,
        content_type: bytes | None,
        header_length: bytes | None,
        body: bytes,
    ) -> str | None:
        """The entry key for a request to ``version`` (its protocol, content type, binary
        header length and body, as sent); None when the cache is off for it (switched off,
        or the version is tagged ``deterministic=false``)."""
        known = self._versions.get(id(version))
        if known is None or known[0] is not version:
            deterministic = version.tags.get("deterministic") != "false"
            enabled = self.is_enabled_for(version.name, deterministic)
            policy = self._filter_tag(version.name) + b"|" + self._limits_tag
            known = (version, enabled, policy)
            if len(self._versions) >= 1024:  # versions come and go with reloads
                self._versions.clear()
            self._versions[id(version)] = known
        _, enabled, policy = known
        if not enabled:
            return None
        return cache_key(
            version.name,
            version.version,
            policy,
            protocol.encode(),
            _sent(content_type),
            _sent(header_length),
            body,
        )

    def _filter_tag(self, model: str) -> bytes:
        rule = self.settings.model(model).output_filters
        return rule.model_dump_json().encode() if rule is not None else b""

    async def get(self, key: str) -> bytes | None:
        if self.sync is not None:
            return self.sync.get_now(key)
        return await self.cache.get(key)

    async def store(self, model: str, key: str, entry: bytes) -> None:
        ttl_s, stale_ttl_s = self._ttls_for(model)
        if self.sync is not None:
            self.sync.set_now(key, entry, ttl_s, stale_ttl_s)
        else:
            await self.cache.set(key, entry, ttl_s, stale_ttl_s)

    async def get_stale(self, key: str) -> bytes | None:
        """The last answer stored under ``key``, even expired, while kept stale."""
        return await self.cache.get_stale(key)

    @staticmethod
    def names(key: str, version: ModelVersion) -> bool:
        """Whether ``key`` (computed earlier for the same request) is for ``version``."""
        return key.startswith(f"{version.name}@{version.version}:")

    def new_evictions(self) -> int:
        """Evictions since the last call (for a metrics counter)."""
        evictions = self.cache.stats.evictions
        new, self._evictions_seen = evictions - self._evictions_seen, evictions
        return new


def _sent(header: bytes | None) -> bytes:
    """A request header as a key part: an absent header and an empty one must differ."""
    return b"" if header is None else b"=" + header
