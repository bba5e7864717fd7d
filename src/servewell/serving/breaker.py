"""One model version's circuit breaker: a state machine on an injected clock.

Closed, every call goes to the model; its outcomes are counted. It opens after
``failures_to_open`` failures in a row, or when at least ``min_requests`` calls of the
last ``window_s`` seconds failed at a rate of ``error_rate_to_open`` or more. Open, calls
are refused at once (:class:`~servewell.errors.ModelUnavailable`, ``Retry-After`` = the
cooldown left) until ``cooldown_s`` has passed; then it is half-open: up to
``half_open_probes`` calls go through at a time, it closes once that many have
succeeded and opens again at the first failure.

Only the model's failures count (:func:`is_model_failure`). A call is admitted with a
ticket (the breaker's generation): an outcome that arrives after the state changed
(a call admitted while closed that ends once it is half-open) is ignored, so it can
neither close nor reopen a breaker it did not probe.

A call costs a few attribute operations: admitting one while closed is one comparison;
recording it is one clock read and two counters in a ring of time buckets
(:class:`SlidingWindow`), not a list of calls. Nothing here locks: the breaker lives on
one event loop. Each server worker process has its own.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

from servewell.errors import (
    DeadlineExceeded,
    ModelCrashed,
    ModelFailed,
    ModelUnavailable,
    ServewellError,
)
from servewell.observability import DeploymentMetrics, current_request
from servewell.observability.metrics import BREAKER_STATES
from servewell.settings.resilience import BreakerSettings

logger = logging.getLogger(__name__)

CLOSED, HALF_OPEN, OPEN = 0, 1, 2
"""The states, as ``servewell_breaker_state`` reports them."""
STATE_NAMES = BREAKER_STATES

BUCKETS = 10
"""Time buckets of the sliding window: it spans ``window_s`` to a tenth."""

#: Called on every change of state: (from, to, why).
OnTransition = Callable[[int, int, str], None]


def is_model_failure(exc: BaseException) -> bool:
    """Whether an exception from a call to the model is the model's fault: it raised
    (:class:`ModelFailed`, or anything that is not a servewell error), crashed, or did
    not answer in time. A caller's mistake, a request shed or refused before the model,
    a cancelled call (``BaseException``) are not."""
    if isinstance(exc, ModelFailed | ModelCrashed | DeadlineExceeded):
        return True
    return isinstance(exc, Exception) and not isinstance(exc, ServewellError)


class SlidingWindow:
    """Calls and failures of the last ``window_s`` seconds, in :data:`BUCKETS` buckets:
    a bucket older than the window is emptied when the clock reaches its slot again."""

    __slots__ = ("_calls", "_failures", "_newest", "bucket_s", "calls", "failures")

    def __init__(self, window_s: float) -> None:
        self.bucket_s = window_s / BUCKETS
        self.calls = 0
        self.failures = 0
        self._calls = [0] * BUCKETS
        self._failures = [0] * BUCKETS
        self._newest = 0
        """The number (time / bucket_s) of the newest bucket."""

    def add(self, now: float, failed: bool) -> None:
        number = int(now / self.bucket_s)
        if number > self._newest:
            self._expire(number)
        slot = number % BUCKETS
        self._calls[slot] += 1
        self.calls += 1
        if failed:
            self._failures[slot] += 1
            self.failures += 1

    def clear(self) -> None:
        self.calls = self.failures = 0
        self._calls = [0] * BUCKETS
        self._failures = [0] * BUCKETS

    def _expire(self, number: int) -> None:
        """Empty the buckets between the newest one and ``number`` (all of them after a
        whole window without calls)."""
        if number - self._newest >= BUCKETS:
            self.clear()
        else:
            for passed in range(self._newest + 1, number + 1):
                slot = passed % BUCKETS
                self.calls -= self._calls[slot]
                self.failures -= self._failures[slot]
                self._calls[slot] = self._failures[slot] = 0
        self._newest = number


class CircuitBreaker:
    """The breaker of ``model`` version ``version``: :meth:`admit` before each call to
    the model, then :meth:`succeeded` or :meth:`settle` with the ticket it gave."""

    def __init__(
        self,
        settings: BreakerSettings,
        model: str,
        version: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_transition: OnTransition | None = None,
    ) -> None:
        self.settings = settings
        self.model = model
        self.version = version
        self.clock = clock
        self.on_transition = on_transition
        self.state = CLOSED
        self.why = ""
        """Why it is in its state (empty while closed since start-up)."""
        self.generation = 0
        """Incremented on every change of state: the tickets of earlier calls expire."""
        self.window = SlidingWindow(settings.window_s)
        self._consecutive = 0
        self._reopen_at = 0.0
        self._probes = 0
        """Probes in flight (half-open)."""
        self._probed = 0
        """Probes that succeeded (half-open)."""

    @property
    def state_name(self) -> str:
        return STATE_NAMES[self.state]

    def cooldown_left_s(self) -> float:
        """Seconds until an open breaker lets a probe through (0 when not open)."""
        return max(0.0, self._reopen_at - self.clock()) if self.state == OPEN else 0.0

    def describe(self) -> str:
        """The state in words, for ``GET /v1/models/{name}``."""
        if self.state == CLOSED:
            return "circuit breaker closed"
        if self.state == HALF_OPEN:
            return f"circuit breaker half-open, probing: {self.why}"
        left_s = math.ceil(self.cooldown_left_s())
        return f"circuit breaker open: {self.why}; next probe in {left_s} s"

    def admit(self) -> int:
        """A ticket for one call to the model; ModelUnavailable when open, or half-open
        with every probe slot taken."""
        if self.state == CLOSED:
            return self.generation
        if self.state == OPEN:
            left_s = self._reopen_at - self.clock()
            if left_s > 0:
                raise self._refusal(left_s)
            self._move(HALF_OPEN, f"cooldown of {self.settings.cooldown_s:g} s over")
        if self._probes >= self.settings.half_open_probes:
            raise self._refusal(0.0)
        self._probes += 1
        return self.generation

    def succeeded(self, ticket: int) -> None:
        if ticket != self.generation:
            return
        if self.state == CLOSED:
            self._consecutive = 0
            self.window.add(self.clock(), False)
            return
        self._probes -= 1
        self._probed += 1
        if self._probed >= self.settings.half_open_probes:
            self._move(CLOSED, f"{self._probed} probes succeeded")

    def failed(self, ticket: int, why: str) -> None:
        """A call admitted with ``ticket`` failed (``why``: the error's code)."""
        if ticket != self.generation:
            return
        if self.state == HALF_OPEN:
            self._open(f"a probe failed ({why})")
            return
        self._consecutive += 1
        window = self.window
        window.add(self.clock(), True)
        settings = self.settings
        if self._consecutive >= settings.failures_to_open:
            self._open(f"{self._consecutive} consecutive failures (last: {why})")
        elif (
            window.calls >= settings.min_requests
            and window.failures >= settings.error_rate_to_open * window.calls
        ):
            self._open(
                f"{window.failures} of {window.calls} calls failed "
                f"in the last {settings.window_s:g} s"
            )

    def released(self, ticket: int) -> None:
        """A call admitted with ``ticket`` ended without saying anything of the model
        (a caller's mistake, shed, cancelled): its probe slot is free again."""
        if ticket == self.generation and self.state == HALF_OPEN:
            self._probes -= 1

    def settle(self, ticket: int, exc: BaseException) -> None:
        """A call admitted with ``ticket`` raised ``exc``: a failure or no verdict."""
        if is_model_failure(exc):
            self.failed(ticket, getattr(exc, "code", type(exc).__name__))
        else:
            self.released(ticket)

    def _open(self, why: str) -> None:
        self._reopen_at = self.clock() + self.settings.cooldown_s
        self._move(OPEN, why)

    def _move(self, state: int, why: str) -> None:
        before, self.state, self.why = self.state, state, why
        self.generation += 1
        self._consecutive = self._probes = self._probed = 0
        if state == CLOSED:
            self.window.clear()
        if self.on_transition is not None:
            self.on_transition(before, state, why)

    def _refusal(self, left_s: float) -> ModelUnavailable:
        state = "open" if self.state == OPEN else "half-open, probing"
        return ModelUnavailable(self.model, self.version, f"circuit breaker {state}", left_s)


def breaker_for(
    settings: BreakerSettings, model: str, version: int, metrics: DeploymentMetrics
) -> CircuitBreaker | None:
    """The breaker of a served version (None when ``enabled`` is off), each change of
    state set in its gauge, counted and logged as one line."""
    if not settings.enabled:
        return None

    def report(before: int, after: int, why: str) -> None:
        metrics.breaker_state.set(after)
        metrics.breaker_transitions[after].inc()
        fields: dict[str, object] = {
            "message": f"circuit breaker {STATE_NAMES[after].replace('_', '-')}",
            "model": model,
            "version": version,
            "from": STATE_NAMES[before],
            "to": STATE_NAMES[after],
            "why": why,
        }
        request = current_request()
        if request is not None:  # the call that moved it
            fields["request_id"] = request.request_id
        level = logging.WARNING if after == OPEN else logging.INFO
        logger.log(
            level,
            "%s@%d: circuit breaker %s -> %s (%s)",
            *(model, version, fields["from"], fields["to"], why),
            extra={"fields": fields},
        )

    return CircuitBreaker(settings, model, version, on_transition=report)
