"""How requests are sent in one step: closed loop (a fixed number of connections, each
sending its next request when the last is answered) or open loop (a fixed arrival rate).

Open loop measures each latency from the request's *intended* send time, as wrk2 does:
when the server stalls, requests keep arriving on schedule and wait, and that wait is in
their latency ("coordinated omission" otherwise hides it). A request due goes to a free
connection at once, or waits for one (a connection takes the next waiting request from
the callback that read its last answer); connections are added while requests wait, one
at a time, up to a budget of twice the rate times the answers' mean latency (what
Little's law puts in flight; at least one a lane, at most ``max_connections``). The
moment a connection takes a request and starts sending it is its actual send: how late
that is (the client's own lateness) and the latency from it (wrk2's ``-U``) are recorded
beside the corrected latency.

The schedule is kept by ``LANES`` lanes, as wrk2's by each of its connections: lane
``i`` hands out requests ``i``, ``i + LANES``, ... each at its time, sleeping on the
loop's timers in between. A lane sleeps the whole timer steps (1 ms) left until its
next request, rounded up, as wrk2 does (``round(ms + 0.5)``), and sleeps again when
the loop wakes it early (its timers count from a cached millisecond clock): a request
never leaves before its time. It so goes out up to about a millisecond after its time,
in its latency (wrk2's, measured the same way, carries the same step; its README:
"accurate to +/- ~1 msec granularity"), but the load core is never held by a spinning
loop, which on a busy machine lost whole time slices and made the client the
bottleneck (bench/README.md, issue #16). A request still unsent a timeout after the
step's end is not sent: it counts as unanswered (status 0, no lateness), so a client
far behind its rate ends on time and its step fails, instead of draining its backlog
for minutes.

During the ramp (closed loop: connections start one after another; open loop: the rate
rises linearly from 0) answers go to a recorder of their own, which the step's figures
leave out.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from array import array
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from servewell.loadtest.bodies import RequestSet
from servewell.loadtest.client import Connection, Result, Target
from servewell.loadtest.stats import NO_ANSWER, StepRecorder

MAX_CONNECTIONS = 1024
#: The most requests due an open loop keeps waiting for a connection (~120 MB); one due
#: past that is counted unanswered at once: a client this far behind its rate (or a
#: server this stalled) cannot send them in time, and keeping every one grew without
#: bound (865 MB at 1,000,000/s for 5 s).
MAX_WAITING = 1_000_000
#: How many schedules an open loop keeps (wrk2's are as many as its connections; 16 is
#: what bench/loadtest.py gives it).
LANES = 16
#: The event loop's timers step by a millisecond (libuv's under uvloop, epoll's under
#: asyncio). The open loop never sleeps less: a shorter sleep is no sleep (uvloop runs
#: it at once), so a lane would spin and hold the load core.
TIMER_STEP_S = 0.001


@dataclass
class Phases:
    """The ramp's recorder and the measured one; which one a request counts in is by
    when it was (meant to be) sent."""

    ramp: StepRecorder
    measured: StepRecorder
    measure_from: float
    sent: int = 0
    connections: int = 0
    """The most connections an open loop held at once."""
    most_waiting: int = 0
    """The most requests due an open loop kept waiting for a connection at once."""

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
    max_waiting: int = MAX_WAITING,
) -> None:
    rate = float(step.rate_per_s or 1)
    total, _ = open_loop_requests(rate, step.ramp_s, step.duration_s)
    start = time.perf_counter()
    give_up_at = start + step.ramp_s + step.duration_s + timeout_s
    connections = ConnectionBudget(rate, max_connections)
    pool = _Senders(
        target, requests, phases, timeout_s, give_up_at, total, connections, max_waiting
    )
    pool.add()
    schedule = partial(intended_time_s, rate_per_s=rate, ramp_s=step.ramp_s)
    lanes = [
        asyncio.create_task(keep_schedule(range(i, total, LANES), start, schedule, pool.due))
        for i in range(min(LANES, total))
    ]
    try:
        await asyncio.gather(*lanes)
        await pool.all_answered
    finally:
        for lane in lanes:
            lane.cancel()
        pool.close()


async def keep_schedule(
    numbers: range,
    start: float,
    schedule: Callable[[int], float],
    due: Callable[[int, float], None],
) -> None:
    """One lane: call ``due`` with each of ``numbers`` at its intended time (``start``
    plus its ``schedule``), sleeping the whole timer steps left before each, rounded
    up, and again when woken early: the loop's timers count from its cached
    millisecond clock, so a sleep can end up to a step before its time, and a request
    must never leave before it is due (its lateness would be hidden, clipped to none)."""
    for k in numbers:
        intended = start + schedule(k)
        while (wait := intended - time.perf_counter()) > 0:
            await asyncio.sleep((wait // TIMER_STEP_S + 1) * TIMER_STEP_S)
        due(k, intended)


class ConnectionBudget:
    """How many connections the open loop may hold: by Little's law the rate times the
    answers' mean latency (from their actual sends) are in flight at once; twice that,
    the mean over the last 10 s of answers, never fewer than one a lane, up to
    ``max_connections``.

    Each part of that rule is there for a server that broke the one before it:
    without a bound, every stall of the server or the client added connections that
    stayed (1,024 at 15,000/s against the floor, where ~10 are in flight); a mean over
    the last 64 answers followed each pause of a server, whose answers are slow just
    after it (232 at 2,400/s against servewell's, where ~2 are in flight); a median of
    the latency starves a server whose answers are slow only now and then (a tenth at
    0.6 s at 300/s holds 18 connections, the median answer quick); the median of what
    was in flight grew without end while a server paused or never answered (every
    connection is in flight then: 1,024). Over 10 s of answers a pause counts only for
    the requests it held, one a connection (16 held through a 2.5 s pause at 1,000/s
    add 8 to the budget), a slow tenth counts as it is, and a server that never answers
    gives nothing to count. Requests due while the budget is spent wait for a
    connection, from their intended times, as wrk2's do for its fixed ones."""

    #: The answers the mean is over: ``WINDOW_S`` of them at the rate, within bounds.
    WINDOW_S, MIN_KEPT, MAX_KEPT = 10.0, 1024, 1 << 17

    def __init__(self, rate_per_s: float, max_connections: int) -> None:
        self.rate_per_s, self.max_connections = rate_per_s, max_connections
        kept = min(self.MAX_KEPT, max(self.MIN_KEPT, math.ceil(rate_per_s * self.WINDOW_S)))
        self._latencies = array("d", bytes(8 * kept))
        """A ring of the last answers' latencies; ``_sum`` is theirs."""
        self._next = self._answers = 0
        self._sum = 0.0

    def answered_in(self, latency_s: float) -> None:
        ring, i = self._latencies, self._next
        self._sum += latency_s - ring[i]
        ring[i] = latency_s
        self._next = (i + 1) % len(ring)
        self._answers += 1

    def allowed(self) -> int:
        kept = min(self._answers, len(self._latencies))
        mean_s = max(self._sum, 0.0) / kept if kept else 0.0  # the sum's rounding: never < 0
        in_flight = self.rate_per_s * mean_s
        # less a hair: a sum's rounding must not add a connection
        return min(self.max_connections, max(LANES, math.ceil(2 * in_flight - 1e-9)))


class _Senders:
    """The open loop's connections and the requests due that wait for one. A free
    connection takes the next waiting request at once, from the callback that read its
    last answer: no task, queue or future between an answer and the next send."""

    def __init__(
        self,
        target: Target,
        requests: RequestSet,
        phases: Phases,
        timeout_s: float,
        give_up_at: float,
        total: int,
        connections: ConnectionBudget,
        max_waiting: int,
    ) -> None:
        self.target, self.requests, self.phases = target, requests, phases
        self.timeout_s, self.give_up_at = timeout_s, give_up_at
        self.connections = connections
        self._added_at = -math.inf
        self.waiting: deque[tuple[int, float]] = deque()
        self.max_waiting = max_waiting
        self.free: list[_Sender] = []
        self.senders: list[_Sender] = []
        self.opening: set[asyncio.Task[None]] = set()
        self.unanswered = total
        self.all_answered: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if total == 0:
            self.all_answered.set_result(None)

    def due(self, k: int, intended: float) -> None:
        """Request ``k`` is due (meant for ``intended``): sent now if a connection is
        free, else kept waiting (and a connection added)."""
        self.phases.sent += 1
        if self.free:
            sender = self.free.pop()
            if not sender.take(k, intended):
                self.free.append(sender)
        elif len(self.waiting) >= self.max_waiting:
            self.give_up(k, intended)
        else:
            self.waiting.append((k, intended))
            self.phases.most_waiting = max(self.phases.most_waiting, len(self.waiting))
            self.grow()

    def give_up(self, k: int, intended: float) -> None:
        """Count request ``k`` unanswered, unsent (the client is too far behind)."""
        invalid = self.requests.pick(k)[1]
        self.phases.record(intended, time.perf_counter() - intended, NO_ANSWER, invalid, None)
        self.answered()

    def add(self) -> None:
        """One more connection; it takes waiting requests once open."""
        self._added_at = time.perf_counter()
        sender = _Sender(self, Connection(self.target, self.timeout_s))
        self.senders.append(sender)
        self.phases.connections = len(self.senders)
        sender.reopen(None)

    def grow(self) -> None:
        """Add a connection if requests wait and the budget allows one more, one at a
        time and at most one a timer step (the lanes all see the same wait; a stall of
        a few milliseconds should not open one each)."""
        if (
            self.waiting
            and len(self.senders) < self.connections.allowed()
            and not self.opening
            and time.perf_counter() - self._added_at >= TIMER_STEP_S
        ):
            self.add()

    def answered(self) -> None:
        self.unanswered -= 1
        if self.unanswered == 0 and not self.all_answered.done():
            self.all_answered.set_result(None)

    def close(self) -> None:
        for task in self.opening:
            task.cancel()
        for sender in self.senders:
            sender.connection.close()


class _Sender:
    """One connection of the open loop: sends a request, records its answer (in the
    callback that read it), then takes the next waiting request or waits to be given one."""

    def __init__(self, pool: _Senders, connection: Connection) -> None:
        self.pool, self.connection = pool, connection
        self._intended, self._actual, self._invalid = 0.0, 0.0, False

    def take(self, k: int, intended: float) -> bool:
        """Send request ``k`` now (opening the connection first if it failed); False
        when it is past giving up, counted unanswered and not sent (the sender is free)."""
        if time.perf_counter() > self.pool.give_up_at:  # far behind: counted, not sent
            self.pool.give_up(k, intended)
            return False
        request, self._invalid = self.pool.requests.pick(k)
        self._intended = intended
        self._actual = time.perf_counter()
        if self.connection.is_open:
            self.connection.send(request, self.on_answer)
        else:
            self.reopen(request)
        return True

    def on_answer(self, result: Result) -> None:
        intended = self._intended
        latency_s = time.perf_counter() - intended
        late_s = self._actual - intended
        if result[0] != NO_ANSWER:  # a timeout is no latency the server gave
            self.pool.connections.answered_in(latency_s - late_s)
        self.pool.phases.record(intended, latency_s, result[0], self._invalid, result[1], late_s)
        self.pool.answered()
        self.next()

    def next(self) -> None:
        """Take the next waiting request, or be free. A loop, not a call per request
        given up: a backlog past giving up is thousands of them."""
        waiting = self.pool.waiting
        while waiting:
            if self.take(*waiting.popleft()):
                return
        self.pool.free.append(self)

    def reopen(self, holding: bytes | None) -> None:
        """Open the connection in a task; then send ``holding`` (its lateness and latency
        include the connect, as an exchange's did) or take what waits."""
        task = asyncio.create_task(self._open(holding))
        self.pool.opening.add(task)
        task.add_done_callback(self.pool.opening.discard)

    async def _open(self, holding: bytes | None) -> None:
        deadline = asyncio.get_running_loop().time() + self.connection.timeout_s
        opened = await self.connection.open(deadline)
        if holding is None:  # opened or not: a failed one tries again for its next request
            self.next()
        elif opened:
            self.connection.send(holding, self.on_answer, deadline)
        else:
            self.on_answer((NO_ANSWER, None))
