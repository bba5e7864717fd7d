"""The guard step as every entry point takes it: the lockout of addresses that failed to
authenticate too often (``serving.lockout``), the credentials read from their headers,
the guard's verdict, counted in the metrics, and the ``RateLimit-*`` headers an admitted
call carries. A refusal is counted (when a rate limit made it) and raised, for the entry
point's protocol to answer."""

from __future__ import annotations

import math
from dataclasses import dataclass

from servewell.core.rate import Decision
from servewell.errors import RateLimited, ServewellError, Unauthorized, Unavailable
from servewell.observability import RequestRecord, ServingMetrics
from servewell.serving.guard import Caller, Guard
from servewell.serving.lockout import Lockout

AUTHORIZATION = b"authorization"
API_KEY = b"x-api-key"
RATELIMIT_LIMIT = b"ratelimit-limit"
RATELIMIT_REMAINING = b"ratelimit-remaining"
RATELIMIT_RESET = b"ratelimit-reset"

Headers = list[tuple[bytes, bytes]]
Credentials = tuple[bytes | None, bytes | None]
"""The ``Authorization`` and ``X-API-Key`` headers of a call."""


@dataclass(slots=True)
class Admitted:
    caller: str
    """A key's name, or ``ip:<address>``."""
    headers: Headers
    """``RateLimit-*`` headers for the answer (none when no limit applied, or the shared
    limiter was down and ``fail_open`` let the call through unchecked)."""


class Admission:
    """``open_paths`` need no key (probes, ``/metrics``, the API docs) and are limited
    per client address instead; ``lockout`` (None: none) refuses the addresses that
    failed to authenticate too often, before their keys are read."""

    def __init__(
        self,
        guard: Guard,
        metrics: ServingMetrics,
        open_paths: frozenset[str] = frozenset(),
        lockout: Lockout | None = None,
    ) -> None:
        self.guard = guard
        self.metrics = metrics
        self.open_paths = open_paths
        self.lockout = lockout if guard.requires_keys else None
        self.admits_everyone = guard.admits_everyone
        """Every call admitted unchecked: the entry point may skip this step."""
        self.decides_now = guard.decides_now and (self.lockout is None or self.lockout.decides_now)
        """:meth:`now` can decide (no rate limiter, or in-process ones)."""
        self._limit_values: dict[int, bytes] = {}

    async def admit(
        self,
        record: RequestRecord | None,
        path: str,
        credentials: Credentials,
        client: str,
        scope: str,
        model: str | None,
    ) -> Headers:
        """The guard step of a call to ``path``: who calls goes on ``record``, the
        ``RateLimit-*`` headers come back; a refusal is counted and raised."""
        if self.admits_everyone:
            if record is not None and path not in self.open_paths:
                record.caller = f"ip:{client}"
            return []
        if path in self.open_paths:
            return await self.anonymous(client)
        admitted = (
            self.now(credentials, client, scope, model)
            if self.decides_now  # in-process limits: no coroutine to await
            else await self.wait(credentials, client, scope, model)
        )
        if record is not None:
            record.caller = admitted.caller
        return admitted.headers

    def now(self, credentials: Credentials, client: str, scope: str, model: str | None) -> Admitted:
        """Admit the call without awaiting (only when :attr:`decides_now`)."""
        try:
            caller = self._identify_now(credentials, client, scope, model)
        except ServewellError as exc:
            self._count_refusal(exc, client)
            raise
        return Admitted(caller.name, self._counted(caller.name, caller.decision))

    async def wait(
        self, credentials: Credentials, client: str, scope: str, model: str | None
    ) -> Admitted:
        """Admit the call, awaiting the rate limiters."""
        try:
            caller = await self._identify(credentials, client, scope, model)
        except ServewellError as exc:
            self._count_refusal(exc, client)
            raise
        return Admitted(caller.name, self._counted(caller.name, caller.decision))

    def _identify_now(
        self, credentials: Credentials, client: str, scope: str, model: str | None
    ) -> Caller:
        """The lockout, then the guard; a failed authentication is counted."""
        lockout = self.lockout
        if lockout is None:
            return self.guard.admit_now(self._token(credentials), client, scope, model)
        lockout.check(client)
        try:
            return self.guard.admit_now(self._token(credentials), client, scope, model)
        except Unauthorized:
            lockout.count_failure_now(client)  # LockedOut instead, if one too many
            raise

    async def _identify(
        self, credentials: Credentials, client: str, scope: str, model: str | None
    ) -> Caller:
        """:meth:`_identify_now`, awaiting the limiters."""
        lockout = self.lockout
        if lockout is None:
            return await self.guard.admit(self._token(credentials), client, scope, model)
        lockout.check(client)
        try:
            return await self.guard.admit(self._token(credentials), client, scope, model)
        except Unauthorized:
            await lockout.count_failure(client)
            raise

    def knows(self, credentials: Credentials, client: str) -> bool:
        """Whether the guard would take these credentials for a key at all (scope, models
        and rates aside): a step that costs work before the guard (routing a chat
        prompt) runs only for such callers. Nothing is counted; the guard refuses the
        others as it refuses every call."""
        if self.guard.keyring is None:
            return True
        try:
            if self.lockout is not None:
                self.lockout.check(client)
            self.guard.keyring.authenticate(self._token(credentials))
        except ServewellError:
            return False
        return True

    def _token(self, credentials: Credentials) -> str | None:
        """The key the headers carry; they are not read when no key is needed (keys
        off), so a stray ``Authorization: Basic`` is no 401 then."""
        return key_from(*credentials) if self.guard.requires_keys else None

    async def anonymous(self, client: str) -> Headers:
        """Admit a call to an open path (probes, metrics), limited by client address."""
        try:
            decision = await self.guard.admit_anonymous(client)
        except ServewellError as exc:
            self._count_refusal(exc, client)
            raise
        return self._counted(f"ip:{client}", decision)

    def _count_refusal(self, exc: ServewellError, client: str) -> None:
        if isinstance(exc, RateLimited | Unavailable):
            outcome = "limited" if isinstance(exc, RateLimited) else "degraded"
            self.metrics.count_rate_limit(getattr(exc, "caller", f"ip:{client}"), outcome)

    def _counted(self, caller: str, decision: Decision | None) -> Headers:
        """Count an admitted call that a limit decided; its ``RateLimit-*`` headers."""
        if decision is None:
            return []
        if decision.degraded:  # the limit was not checked: no count of what remains
            self.metrics.count_rate_limit(caller, "degraded")
            return []
        self.metrics.count_rate_limit(caller, "allowed")
        limit = self._limit_values.get(decision.limit)
        if limit is None:
            limit = self._limit_values[decision.limit] = str(decision.limit).encode()
        return [
            (RATELIMIT_LIMIT, limit),
            (RATELIMIT_REMAINING, str(decision.remaining).encode()),
            (RATELIMIT_RESET, str(math.ceil(decision.reset_s)).encode()),
        ]


def key_from(authorization: bytes | None, key: bytes | None) -> str | None:
    """The key in an ``Authorization`` header (Bearer) or else an ``X-API-Key`` header;
    Unauthorized, saying what is wrong, for an ``Authorization`` header that is not
    ``Bearer <key>`` (a bare key, another scheme, no key after the scheme)."""
    if authorization is not None:
        kind, _, token = authorization.decode("latin-1").strip().partition(" ")
        if kind.lower() == "bearer" and token.strip():
            return token.strip()
        raise Unauthorized(_malformed_authorization(kind, token))
    return key.decode("latin-1").strip() if key else None


def _malformed_authorization(kind: str, token: str) -> str:
    """Why an ``Authorization`` header carries no key (the header's value is not echoed:
    it may be a secret)."""
    send = "send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"
    if kind.lower() == "bearer":
        return f"the Authorization header has no key after 'Bearer': {send}"
    if not token.strip():
        return f"the Authorization header has no scheme: {send}"
    return f"the Authorization header's scheme is not Bearer: {send}"
