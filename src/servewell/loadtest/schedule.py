"""How requests are sent in one step: closed loop (a fixed number of connections, each
sending its next request when the last is answered) or open loop (a fixed arrival rate).

Open loop measures each latency from the request's *intended* send time, as wrk2 does:
when the server stalls, requests keep arriving on schedule and wait, and that wait is
in their latency ("coordinated omission" otherwise hides it). Requests wait in a queue
for a free connection; connections are added while requests wait, up to
``max_connections``. The moment a connection takes a request and starts sending it is
its actual send: how late that is (the client's own lateness) and the latency from it
(wrk2's ``-U``) are recorded beside the corrected latency. The dispatcher sleeps on the
loop's timers, at least one step (1 ms) at a time, and queues everything due when it
wakes, as wrk2 does: a request may go out up to about a millisecond after its time (in
its latency), but the load core is not held by a spinning loop, which on a busy
machine lost whole time slices and made the client the bottleneck (bench/README.md,
issue #16). A request still unsent a timeout after the step's end is not sent: it
counts as unanswered (status 0, no lateness), so a client far behind its rate ends on
time and its step fails, instead of draining its queue for minutes.

During the ramp (closed loop: connections start one after another; open loop: the rate
rises linearly from 0) answers go to a recorder of their own, which the step's figures
leave out.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from servewell.loadtest.bodies import RequestSet
from servewell.loadtest.client import Connection, Target
from servewell.loadtest.stats import NO_ANSWER, StepRecorder

MAX_CONNECTIONS = 1024
#: The event loop's timers step by a millisecond (libuv's under uvloop, epoll's under
#: asyncio). The open loop never sleeps less: a shorter sleep is no sleep (uvloop runs
#: it at once), so the dispatcher would spin and hold the load core.
TIMER_STEP_S = 0.001


@dataclass
class Phases:
    """The ramp's recorder and the measured one; which one a request counts in is by
    when it was (meant to be) sent."""

    ramp: StepRecorder
    measured: StepRecorder
    measure_from: float
    sent: int = 0

    def record(
        self,
        sent_at: float,
        latency_s: float,
        status: int,
        invalid: bool,
        version: str | None,
        late_s: float | None = None,
    ) -> None:
        recorder = self.measured if sent_at >= self.measure_from else self.ramp
        recorder.record(latency_s, status, invalid, version, late_s)


@dataclass(frozen=True)
class Step:
    """What one step does: ``concurrency`` connections or ``rate_per_s`` arrivals."""

    label: str
    duration_s: float
    ramp_s: float = 0.0
    concurrency: int | None = None
    rate_per_s: float | None = None

    @property
    def target(self) -> dict[str, float]:
        if self.concurrency is not None:
            return {"concurrency": self.concurrency}
        return {"rate_per_s": float(self.rate_per_s or 0)}


async def run_step(
    step: Step, target: Target, requests: RequestSet, phases: Phases, timeout_s: float
) -> None:
    """Send the step's load until its ramp and duration have passed."""
    if step.concurrency is not None:
        await closed_loop(step, target, requests, phases, timeout_s)
    else:
        await open_loop(step, target, requests, phases, timeout_s)


async def closed_loop(
    step: Step, target: Target, requests: RequestSet, phases: Phases, timeout_s: float
) -> None:
    concurrency = step.concurrency or 1
    start = time.perf_counter()
    end = start + step.ramp_s + step.duration_s
    numbers = itertools.count()

    async def connection(i: int) -> None:
        await asyncio.sleep(step.ramp_s * i / concurrency)
        link = Connection(target, timeout_s)
        clock = time.perf_counter
        try:
            while (sent_at := clock()) < end:
                request, invalid = requests.pick(next(numbers))
                phases.sent += 1
                status, version = await link.exchange(request)
                phases.record(sent_at, clock() - sent_at, status, invalid, version)
        finally:
            link.close()

    await asyncio.gather(*(connection(i) for i in range(concurrency)))


def intended_time_s(k: int, rate_per_s: float, ramp_s: float) -> float:
    """When request ``k`` is due, from the step's start: on a linear ramp from 0 to the
    rate over ``ramp_s`` (``rate * t² / (2 ramp)`` requests by ``t``), then steady."""
    ramp_requests = rate_per_s * ramp_s / 2
    if k < ramp_requests:
        return math.sqrt(2 * k * ramp_s / rate_per_s)
    return ramp_s + (k - ramp_requests) / rate_per_s


def open_loop_requests(rate_per_s: float, ramp_s: float, duration_s: float) -> tuple[int, int]:
    """How many requests an open-loop step sends, and how many of them are due in its
    measured time (the rest are the ramp's)."""
    total = math.floor(rate_per_s * (ramp_s / 2 + duration_s))
    return total, total - min(math.ceil(rate_per_s * ramp_s / 2), total)


async def open_loop(
    step: Step,
    target: Target,
    requests: RequestSet,
    phases: Phases,
    timeout_s: float,
    max_connections: int = MAX_CONNECTIONS,
) -> None:
    rate = float(step.rate_per_s or 1)
    queue: asyncio.Queue[tuple[int, float] | None] = asyncio.Queue()
    idle = [0]
    workers: list[asyncio.Task[None]] = []
    give_up_at = time.perf_counter() + step.ramp_s + step.duration_s + timeout_s

    async def connection() -> None:
        link = Connection(target, timeout_s)
        clock = time.perf_counter
        try:
            while True:
                idle[0] += 1
                due = await queue.get()
                idle[0] -= 1
                if due is None:
                    return
                k, intended = due
                request, invalid = requests.pick(k)
                actual = clock()
                if actual > give_up_at:
                    phases.record(intended, actual - intended, NO_ANSWER, invalid, None)
                    continue
                status, version = await link.exchange(request)
                late_s = actual - intended
                phases.record(intended, clock() - intended, status, invalid, version, late_s)
        finally:
            link.close()

    def add_connection() -> None:
        workers.append(asyncio.create_task(connection()))

    await _dispatch(
        step, rate, queue, phases, lambda: idle[0], add_connection, max_connections, workers
    )
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)


async def _dispatch(
    step: Step,
    rate: float,
    queue: asyncio.Queue[tuple[int, float] | None],
    phases: Phases,
    idle: Callable[[], int],
    add_connection: Callable[[], None],
    max_connections: int,
    workers: list[asyncio.Task[None]],
) -> None:
    """Queue each request at its intended time, adding a connection when one waits."""
    start = time.perf_counter()
    total, _ = open_loop_requests(rate, step.ramp_s, step.duration_s)
    add_connection()
    k = 0
    while k < total:
        now = time.perf_counter()
        while k < total and (intended := start + intended_time_s(k, rate, step.ramp_s)) <= now:
            queue.put_nowait((k, intended))
            phases.sent += 1
            k += 1
        if queue.qsize() > idle() and len(workers) < max_connections:
            add_connection()
        if k < total:
            wait = start + intended_time_s(k, rate, step.ramp_s) - time.perf_counter()
            await asyncio.sleep(max(wait, TIMER_STEP_S))
