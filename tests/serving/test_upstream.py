"""The upstream client against the scripted upstream process, over real HTTP: retries
and their spacing, Retry-After, the deadline, the breaker, errors in servewell's words."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from scripted_upstream import ScriptedUpstream, scripted_upstream
from servewell.core.deadline import Deadline
from servewell.core.remote_spec import RemoteSpec
from servewell.errors import (
    DeadlineExceeded,
    InvalidConfig,
    ModelFailed,
    ModelUnavailable,
    Overloaded,
)
from servewell.serving.breaker import CircuitBreaker
from servewell.serving.upstream import Upstream, retry_after
from servewell.settings.resilience import BreakerSettings

pytestmark = pytest.mark.anyio
SECRET = "sk-test-not-a-real-credential-1234"
CHAT = {"model": "m1", "messages": [{"role": "user", "content": "hello"}]}


@pytest.fixture(params=["asyncio", "uvloop"])
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    """The stdlib's loop, and uvloop's, which servers run on (their protocols differ:
    uvloop tells a connection it is made only after ``create_connection`` returns)."""
    return "asyncio", {"use_uvloop": request.param == "uvloop"}


@pytest.fixture(scope="module")
def scripted() -> Iterator[ScriptedUpstream]:
    with scripted_upstream() as running:
        yield running


def spec_for(url: str, **more: Any) -> RemoteSpec:
    fields = {"kind": "openai", "url": url, "model": "m1", "credential_env": "SCRIPTED_KEY"}
    fields["backoff"] = {"first_s": 0.05, "max_s": 0.2}
    return RemoteSpec.model_validate({**fields, **more})


@pytest.fixture
async def upstream(
    scripted: ScriptedUpstream, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Upstream]:
    monkeypatch.setenv("SCRIPTED_KEY", SECRET)
    running = Upstream(spec_for(scripted.url), "chatty", 1)
    running.load()
    await running.start()
    yield running
    await running.close()


PATH = "/v1/chat/completions"
chat = json.dumps(CHAT).encode()
streaming = json.dumps({**CHAT, "stream": True}).encode()


def content_of(answer: bytes) -> str:
    return str(json.loads(answer)["choices"][0]["message"]["content"])


async def test_a_call_carries_the_credential_from_the_environment(
    upstream: Upstream, scripted: ScriptedUpstream
) -> None:
    scripted.script([])
    answer = await upstream.post(PATH, chat, Deadline.after_ms(5000))
    assert content_of(answer) == "echo: hello"
    [received] = scripted.received()
    assert received["headers"]["authorization"] == f"Bearer {SECRET}"


async def test_5xx_and_dropped_connections_are_retried_with_backoff(
    upstream: Upstream, scripted: ScriptedUpstream
) -> None:
    retries: list[int] = []
    upstream.on_retry = lambda: retries.append(1)
    scripted.script([{"status": 500}, {"drop": "before"}])
    assert content_of(await upstream.post(PATH, chat, Deadline.after_ms(5000))) == "echo: hello"
    assert len(scripted.received()) == 3
    assert len(retries) == 2
    scripted.script([{"drop": "mid"}])
    assert content_of(await upstream.post(PATH, chat, Deadline.after_ms(5000))) == "echo: hello"


async def test_retry_after_is_honoured(upstream: Upstream, scripted: ScriptedUpstream) -> None:
    scripted.script([{"status": 429, "retry_after": "1"}])
    assert content_of(await upstream.post(PATH, chat, Deadline.after_ms(5000))) == "echo: hello"
    first, second = scripted.received()
    assert second["t"] - first["t"] >= 1.0


async def test_a_retry_after_past_the_deadline_is_not_waited(
    upstream: Upstream, scripted: ScriptedUpstream
) -> None:
    scripted.script([{"status": 429, "retry_after": "30"}])
    with pytest.raises(Overloaded) as caught:
        await upstream.post(PATH, chat, Deadline.after_ms(3000))
    assert caught.value.retry_after_s == 30
    assert len(scripted.received()) == 1


async def test_a_503_after_the_retries_is_unavailable(
    upstream: Upstream, scripted: ScriptedUpstream
) -> None:
    scripted.script([], default={"status": 503, "retry_after": "0"})
    with pytest.raises(ModelUnavailable) as caught:
        await upstream.post(PATH, chat, Deadline.after_ms(5000))
    assert "503" in caught.value.message
    assert SECRET not in caught.value.message
    assert len(scripted.received()) == 3  # retries: 2


async def test_a_4xx_is_not_retried(upstream: Upstream, scripted: ScriptedUpstream) -> None:
    scripted.script([{"status": 400}])
    with pytest.raises(ModelFailed, match=r"refused the request \(400\)"):
        await upstream.post(PATH, chat, Deadline.after_ms(5000))
    assert len(scripted.received()) == 1


async def test_the_deadline_bounds_a_slow_upstream(
    upstream: Upstream, scripted: ScriptedUpstream
) -> None:
    scripted.script([{"latency_ms": 5000}])
    with pytest.raises(DeadlineExceeded):
        await upstream.post(PATH, chat, Deadline.after_ms(300))
    assert len(scripted.received()) == 1


async def test_an_unreachable_upstream_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    from redis_server import free_port

    monkeypatch.setenv("SCRIPTED_KEY", SECRET)
    closed = Upstream(spec_for(f"http://127.0.0.1:{free_port()}", retries=1), "chatty", 1)
    closed.load()
    await closed.start()
    with pytest.raises(ModelUnavailable, match="cannot be reached"):
        await closed.post(PATH, chat, Deadline.after_ms(5000))
    await closed.close()


def test_a_missing_credential_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SCRIPTED_KEY", raising=False)
    with pytest.raises(InvalidConfig, match="environment variable SCRIPTED_KEY"):
        Upstream(spec_for("http://127.0.0.1:1"), "chatty", 1).load()


async def test_the_breaker_counts_each_attempt_and_opens(
    upstream: Upstream, scripted: ScriptedUpstream
) -> None:
    settings = BreakerSettings(enabled=True, failures_to_open=3, cooldown_s=60)
    upstream.breaker = CircuitBreaker(settings, "chatty", 1)
    scripted.script([], default={"status": 500})
    with pytest.raises(ModelFailed):
        await upstream.post(PATH, chat, Deadline.after_ms(5000))
    with pytest.raises(ModelUnavailable, match="circuit breaker open"):
        await upstream.post(PATH, chat, Deadline.after_ms(5000))
    assert len(scripted.received()) == 3


async def test_a_stream_yields_events_and_maps_a_drop(
    upstream: Upstream, scripted: ScriptedUpstream
) -> None:
    scripted.script([{"status": 503, "retry_after": "0"}, {"chunks": ["a ", "b"]}])
    async with upstream.stream(PATH, streaming, Deadline.after_ms(5000)) as received:
        lines = [line.decode() async for line in received if line]
    assert lines[-1] == "data: [DONE]"
    assert json.loads(lines[0].removeprefix("data: "))["choices"][0]["delta"]["content"] == "a "
    scripted.script([{"drop": "mid"}])
    with pytest.raises(ModelFailed, match="dropped"):
        async with upstream.stream(PATH, streaming, Deadline.after_ms(5000)) as received:
            [line async for line in received]


def test_retry_after_reads_seconds_and_dates() -> None:
    assert retry_after("2") == 2.0
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert retry_after("soon") is None
    assert retry_after(None) is None


async def test_reading_a_stream_past_the_deadline_is_deadline_exceeded(
    upstream: Upstream, scripted: ScriptedUpstream
) -> None:
    scripted.script([{"chunks": ["a ", "b ", "c"], "chunk_delay_ms": 5000}])
    with pytest.raises(DeadlineExceeded):
        async with upstream.stream(PATH, streaming, Deadline.after_ms(500)) as received:
            [line async for line in received]
