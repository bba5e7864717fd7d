"""The guards in front of every model call: authenticate, authorize, rate-limit.

Knows nothing of HTTP: the adapter hands in the presented key (or None), the client's
address, the scope the route needs and the model it names, and gets back who is calling
and the rate-limit decision to report in headers, or a typed error (401, 403, 429, 503).
"""

from __future__ import annotations

from dataclasses import dataclass

from servewell.core.apikey import grants
from servewell.core.rate import Decision, Rate
from servewell.errors import Forbidden, RateLimited, Unavailable
from servewell.limits import RateLimiter, SyncRateLimiter
from servewell.registry.keys import ApiKey
from servewell.serving.keyring import KeyRing
from servewell.settings import RateLimitSettings

#: The end of a key's token-rate bucket's name (``key:<name>:tpm``, never a key's name:
#: names have no ``:``).
TPM_SUFFIX = ":tpm"


@dataclass(slots=True)  # built on every request: a frozen one costs ~3x to build
class Caller:
    """Who is calling: a key's name, or ``ip:<address>`` without one."""

    name: str
    key: ApiKey | None
    decision: Decision | None


class Guard:
    def __init__(
        self,
        keyring: KeyRing | None,
        limiter: RateLimiter | None,
        settings: RateLimitSettings,
        sync_limiter: SyncRateLimiter | None = None,
    ) -> None:
        self.keyring = keyring
        self.limiter = limiter
        self.settings = settings
        self.sync_limiter = sync_limiter
        """``limiter`` when it decides without awaiting (``bootstrap`` knows), else None."""
        self._default = Rate.parse(settings.default_rate)
        self._anonymous = Rate.parse(settings.anonymous_rate) if settings.anonymous_rate else None
        self._per_model = {name: Rate.parse(text) for name, text in settings.model_rates.items()}
        self._key_rates: dict[str, Rate] = {}
        # A key's buckets on a model, built once (a key's name and rate never change).
        self._bucket_lists: dict[tuple[str, str | None], list[tuple[str, Rate]]] = {}

    @property
    def requires_keys(self) -> bool:
        return self.keyring is not None

    @property
    def admits_everyone(self) -> bool:
        """Whether every call is admitted unchecked: no keys, and no limit on callers
        without one (the adapter can then skip the guard altogether)."""
        limited = self.limiter is not None and self.settings.enabled
        return self.keyring is None and not (limited and self._anonymous is not None)

    @property
    def decides_now(self) -> bool:
        """Whether :meth:`admit_now` can decide (no limiter, or an in-process one)."""
        return self.limiter is None or self.sync_limiter is self.limiter

    async def admit(
        self, token: str | None, client: str, scope: str, model: str | None = None
    ) -> Caller:
        """Admit the call or raise Unauthorized, Forbidden, RateLimited or Unavailable."""
        name, key, buckets = self._authorize(token, client, scope, model)
        decision = None
        if self.limiter is not None:
            for index, (bucket, rate) in enumerate(buckets):
                verdict = judged(bucket, await self.limiter.acquire(bucket, rate))
                decision = verdict if index == 0 else decision
        return Caller(name, key, decision)

    def admit_now(
        self, token: str | None, client: str, scope: str, model: str | None = None
    ) -> Caller:
        """:meth:`admit` without awaiting; only when :attr:`decides_now`."""
        name, key, buckets = self._authorize(token, client, scope, model)
        limiter = self.sync_limiter
        if not buckets or limiter is None:
            return Caller(name, key, None)
        first, rate = buckets[0]
        decision = judged(first, limiter.acquire_now(first, rate))
        for bucket, rate in buckets[1:]:
            judged(bucket, limiter.acquire_now(bucket, rate))
        return Caller(name, key, decision)

    async def admit_anonymous(self, client: str) -> Decision | None:
        """Limit a call to an open path (health, metrics) by client address."""
        if self.limiter is None or self._anonymous is None or not self.settings.enabled:
            return None
        bucket = f"ip:{client}"
        return judged(bucket, await self.limiter.acquire(bucket, self._anonymous))

    def _authorize(
        self, token: str | None, client: str, scope: str, model: str | None
    ) -> tuple[str, ApiKey | None, list[tuple[str, Rate]]]:
        """Who is calling and the buckets to take a token from, in order; raises
        Unauthorized or Forbidden (before any bucket is touched)."""
        limited = self.limiter is not None and self.settings.enabled
        if self.keyring is None:
            name = f"ip:{client}"
            anonymous = self._anonymous
            return name, None, [(name, anonymous)] if limited and anonymous is not None else []
        key = self.keyring.authenticate(token)
        if not grants(key.scopes, scope):
            raise Forbidden(f"the API key '{key.name}' lacks the '{scope}' scope", key=key.name)
        if model is not None and key.models is not None and model not in key.models:
            raise Forbidden(f"the API key '{key.name}' may not call model '{model}'", key=key.name)
        if not limited:
            return key.name, key, []
        known = self._bucket_lists.get((key.key_id, model))
        if known is not None:
            return key.name, key, known
        buckets = [(f"key:{key.name}", self._rate_of(key))]
        if model is not None and model in self._per_model:
            buckets.append((f"key:{key.name}:model:{model}", self._per_model[model]))
        if len(self._bucket_lists) >= 10_000:  # many keys x models: start over
            self._bucket_lists.clear()
        self._bucket_lists[(key.key_id, model)] = buckets
        return key.name, key, buckets

    def _rate_of(self, key: ApiKey) -> Rate:
        if key.rate is None:
            return self._default
        rate = self._key_rates.get(key.rate)
        if rate is None:
            rate = self._key_rates[key.rate] = Rate.parse(key.rate)
        return rate


def judged(bucket: str, decision: Decision) -> Decision:
    """The decision if it allows the call; else RateLimited, or Unavailable when the shared
    backend is down and the policy is fail_closed (also the token rates' judge:
    ``serving/llm_accounting.py``)."""
    if decision.allowed:
        return decision
    if decision.degraded:
        raise Unavailable("the rate limiter", max(1, round(decision.retry_after_s)))
    caller = bucket.split(":")[1] if bucket.startswith("key:") else bucket
    raise RateLimited(_who(bucket), decision.retry_after_s, decision.headers(), caller=caller)


def _who(bucket: str) -> str:
    """A bucket's name for people: ``key 'ci'``, ``key 'ci' on model 'iris'``, ``client
    10.0.0.1`` (built only for a refusal)."""
    if not bucket.startswith("key:"):
        return f"client {bucket.removeprefix('ip:')}"
    name, _, model = bucket.removeprefix("key:").partition(":model:")
    if name.endswith(TPM_SUFFIX):
        return f"key '{name.removesuffix(TPM_SUFFIX)}' in LLM tokens per minute"
    return f"key '{name}' on model '{model}'" if model else f"key '{name}'"
