"""Call again after a failure: exponential backoff with full jitter (tenacity), never
sleeping past the request's deadline.

One mechanism for every caller that retries: a deployment's ``models.<name>.retries``,
and a remote model's calls to its upstream (:mod:`servewell.serving.upstream`), which
also honour the upstream's ``Retry-After`` (``retry_after_of``). Callers with no retries
configured do not come here (no tenacity object is made, nor tenacity imported, for
them).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from servewell.core.deadline import Deadline
from servewell.serving.breaker import is_model_failure

if TYPE_CHECKING:
    from tenacity import RetryCallState

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Backoff:
    """Wait up to ``first_s`` before the first retry, up to twice that before the
    second, and so on, never more than ``max_s`` (each wait drawn uniformly from zero to
    that bound: "full jitter", so callers that failed together do not retry together)."""

    first_s: float = 0.025
    max_s: float = 1.0


LOCAL_BACKOFF = Backoff()
"""For a model in this process: a fault that passes, passes fast (25 ms, 50 ms, ...)."""


async def call_with_retries(
    call: Callable[[], Awaitable[T]],
    retries: int,
    deadline: Deadline | None,
    *,
    on_retry: Callable[[], None] = lambda: None,
    backoff: Backoff = LOCAL_BACKOFF,
    is_retryable: Callable[[BaseException], bool] = is_model_failure,
    retry_after_of: Callable[[BaseException], float | None] = lambda exc: None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T:
    """``call()``, and up to ``retries`` more times while it raises what
    ``is_retryable`` accepts; ``on_retry`` before each wait. A wait that would end at or
    past ``deadline`` (``clock``: the deadline's) is not taken: the last error is raised
    instead. Anything else is raised at once. When ``retry_after_of(error)`` gives
    seconds (an upstream's ``Retry-After``), the wait is at least that long.

    The first attempt is made here, before tenacity: a call that succeeds (nearly all)
    costs one await, not tenacity's machinery."""
    try:
        return await call()
    except BaseException as exc:
        if retries <= 0 or not is_retryable(exc):
            raise
        first_error = exc
    replayed = False

    async def attempt() -> T:
        nonlocal replayed
        if not replayed:  # tenacity's first attempt: the one made above
            replayed = True
            raise first_error
        return await call()

    from tenacity import AsyncRetrying, retry_if_exception, wait_random_exponential

    jitter = wait_random_exponential(multiplier=backoff.first_s, max=backoff.max_s)

    def wait(state: RetryCallState) -> float:
        drawn = float(jitter(state))
        outcome = state.outcome
        error = outcome.exception() if outcome is not None else None
        asked_s = retry_after_of(error) if error is not None else None
        return drawn if asked_s is None else max(drawn, asked_s)

    def should_stop(state: RetryCallState) -> bool:
        if state.attempt_number > retries:
            return True
        return deadline is not None and clock() + state.upcoming_sleep >= deadline.at

    retrying = AsyncRetrying(
        sleep=sleep,
        stop=should_stop,
        wait=wait,
        retry=retry_if_exception(is_retryable),
        before_sleep=lambda state: on_retry(),
        reraise=True,
    )
    return await retrying(attempt)
