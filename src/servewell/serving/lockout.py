"""Failed authentications, limited per client address.

Each failure (a 401: no key, an unknown, revoked or malformed one) takes a token from the
address's bucket ``auth:<address>`` (``auth.failed_attempts_rate``) in the configured rate
limiter, so with Redis every worker and replica counts into one budget. A failure that
finds the bucket empty locks the address out until a token is back: from then on its
requests that need a key are refused with :class:`~servewell.errors.LockedOut` (429)
*before* any key is looked at — a valid key too, or the lockout would still answer which
keys are valid, at full speed, to whoever tries a list of leaked ones.

Which addresses are locked is kept in this process, in a table of bounded size, so the
check in front of every key lookup is one dict lookup and never a round trip. A worker
that has not yet seen the lockout learns of it at the address's next failure (answered
429 too). Successes are never counted.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from servewell.core.rate import Decision, Rate
from servewell.errors import LockedOut
from servewell.limits import RateLimiter, SyncRateLimiter

#: Locked addresses remembered at most; past it the oldest lockout is forgotten (that
#: address's next failure finds its bucket still empty and locks it again).
MAX_LOCKED = 10_000


class Lockout:
    def __init__(
        self,
        limiter: RateLimiter,
        rate: Rate,
        sync_limiter: SyncRateLimiter | None = None,
        max_locked: int = MAX_LOCKED,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limiter = limiter
        self.rate = rate
        self.sync_limiter = sync_limiter
        """``limiter`` when it decides without awaiting (``bootstrap`` knows), else None."""
        self.max_locked = max_locked
        self.clock = clock
        self._locked_until: OrderedDict[str, float] = OrderedDict()

    @property
    def decides_now(self) -> bool:
        """Whether :meth:`count_failure_now` may be called (an in-process limiter)."""
        return self.sync_limiter is not None

    def check(self, client: str) -> None:
        """Raise LockedOut while ``client`` is locked out."""
        until = self._locked_until.get(client)
        if until is None:
            return
        remaining_s = until - self.clock()
        if remaining_s > 0:
            raise LockedOut(client, remaining_s)
        del self._locked_until[client]

    async def count_failure(self, client: str) -> None:
        """Count a failed authentication from ``client``; LockedOut if it was one too many."""
        self._judge(client, await self.limiter.acquire(_bucket(client), self.rate))

    def count_failure_now(self, client: str) -> None:
        """:meth:`count_failure` without awaiting; only when :attr:`decides_now`."""
        assert self.sync_limiter is not None
        self._judge(client, self.sync_limiter.acquire_now(_bucket(client), self.rate))

    def _judge(self, client: str, decision: Decision) -> None:
        # A limiter that could not decide (Redis down) locks nobody out: the failure is
        # answered 401 as it would be without a lockout.
        if decision.allowed or decision.degraded:
            return
        self._locked_until[client] = self.clock() + decision.retry_after_s
        self._locked_until.move_to_end(client)
        if len(self._locked_until) > self.max_locked:
            self._locked_until.popitem(last=False)
        raise LockedOut(client, decision.retry_after_s)


def _bucket(client: str) -> str:
    return f"auth:{client}"
