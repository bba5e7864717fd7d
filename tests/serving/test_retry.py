"""Retries: how many, what is retried, backoff growing with jitter and never sleeping
past the deadline (on a fake clock that the sleeps move)."""

from __future__ import annotations

import pytest

from fake_clock import FakeClock
from servewell.core.deadline import Deadline
from servewell.errors import DeadlineExceeded, InvalidInput, ModelFailed, ModelUnavailable
from servewell.serving.retry import Backoff, call_with_retries

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Model:
    """Raises the errors it is given, one per call, then answers "ok"."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


class Sleeps:
    """An asyncio.sleep that moves a fake clock and remembers each wait."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.clock.advance(seconds)


async def _call(model: Model, retries: int, deadline: Deadline | None, **options: object) -> str:
    clock = options.pop("clock", FakeClock())
    assert isinstance(clock, FakeClock)
    sleeps = options.pop("sleeps", Sleeps(clock))
    return await call_with_retries(
        model,
        retries,
        deadline,
        clock=clock,
        sleep=sleeps,
        **options,  # type: ignore[arg-type]
    )


async def test_a_failure_is_retried_and_each_retry_counted() -> None:
    model, counted = Model(ModelFailed("1"), RuntimeError("2")), []
    assert await _call(model, 2, None, on_retry=lambda: counted.append(1)) == "ok"
    assert model.calls == 3
    assert len(counted) == 2


async def test_after_the_last_retry_the_last_error_is_raised() -> None:
    model = Model(ModelFailed("first"), ModelFailed("second"), ModelFailed("third"))
    with pytest.raises(ModelFailed, match="second"):
        await _call(model, 1, None)
    assert model.calls == 2


@pytest.mark.parametrize(
    "error",
    [
        InvalidInput("the caller's mistake"),
        ModelUnavailable("fraud", 1, "circuit breaker open"),
    ],
)
async def test_only_the_models_failures_are_retried(error: Exception) -> None:
    model = Model(error)
    with pytest.raises(type(error)):
        await _call(model, 3, None)
    assert model.calls == 1


async def test_waits_grow_with_jitter_up_to_their_cap() -> None:
    clock = FakeClock()
    sleeps = Sleeps(clock)
    model = Model(*[ModelFailed(str(n)) for n in range(8)])
    backoff = Backoff(first_s=0.1, max_s=0.4)
    await _call(model, 8, None, backoff=backoff, clock=clock, sleeps=sleeps)
    bounds = [0.1, 0.2, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4]
    assert len(sleeps.waits) == 8
    assert all(0 <= wait <= bound for wait, bound in zip(sleeps.waits, bounds, strict=True))
    assert len(set(sleeps.waits)) > 1  # drawn, not fixed


async def test_no_wait_ends_past_the_deadline() -> None:
    clock = FakeClock()
    sleeps = Sleeps(clock)
    deadline = Deadline(clock() + 1.0, 1000)
    model = Model(*[ModelFailed(str(n)) for n in range(200)])
    with pytest.raises(ModelFailed):
        await _call(model, 100, deadline, backoff=Backoff(0.2, 0.8), clock=clock, sleeps=sleeps)
    assert clock() < deadline.at  # every wait it took ended before the deadline
    # The deadline stopped it, not the count: 100 waits of up to 0.8 s (0.4 s on
    # average) do not fit in 1 s.
    assert model.calls == len(sleeps.waits) + 1 < 100


async def test_a_passed_deadline_is_not_retried() -> None:
    clock = FakeClock()
    model = Model(DeadlineExceeded("fraud", 200))
    with pytest.raises(DeadlineExceeded):
        await _call(model, 3, Deadline(clock() - 0.01, 200), clock=clock)
    assert model.calls == 1
