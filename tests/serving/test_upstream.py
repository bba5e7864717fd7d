"""The upstream client against the scripted upstream process, over real HTTP: retries
and their spacing, Retry-After, the deadline, the breaker, errors in servewell's words."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
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


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


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


def chat(client: httpx.AsyncClient) -> httpx.Request:
    return client.build_request("POST", "/v1/chat/completions", json=CHAT)


async def test_a_call_carries_the_credential_from_the_environment(
    upstream: Upstream, scripted: ScriptedUpstream
) -> None:
    scripted.script([])
    response = await upstream.send(chat, Deadline.after_ms(5000))
    assert response.json()["choices"][0]["message"]["content"] == "echo: hello"
    [received] = scripted.received()
    assert received["headers"]["authorization"] == f"Bearer {SECRET}"


async def test_5xx_and_dropped_connections_are_retried_with_backoff(
    upstream: Upstream, scripted: ScriptedUpstream
) -> None:
    retries: list[int] = []
    upstream.on_retry = lambda: retries.append(1)
    scripted.script([{"status": 500}, {"drop": "before"}])
    response = await upstream.send(chat, Deadline.after_ms(5000))
    assert response.status_code == 200
    assert len(scripted.received()) == 3
    assert len(retries) == 2
    scripted.script([{"drop": "mid"}])
    assert (await upstream.send(chat, Deadline.after_ms(5000))).status_code == 200


async def test_retry_after_is_honoured(upstream: Upstream, scripted: ScriptedUpstream) -> None:
    scripted.script([{"status": 429, "retry_after": "1"}])
    assert (await upstream.send(chat, Deadline.after_ms(5000))).status_code == 200
    first, second = scripted.received()
    assert second["t"] - first["t"] >= 1.0


async def test_a_retry_after_past_the_deadline_is_not_waited(
    upstream: Upstream, scripted: ScriptedUpstream
) -> None:
    scripted.script([{"status": 429, "retry_after": "30"}])
    with pytest.raises(Overloaded) as caught:
        await upstream.send(chat, Deadline.after_ms(3000))
    assert caught.value.retry_after_s == 30
    assert len(scripted.received()) == 1


async def test_a_503_after_the_retries_is_unavailable(
    upstream: Upstream, scripted: ScriptedUpstream
) -> None:
    scripted.script([], default={"status": 503, "retry_after": "0"})
    with pytest.raises(ModelUnavailable) as caught:
        await upstream.send(chat, Deadline.after_ms(5000))
    assert "503" in caught.value.message
    assert SECRET not in caught.value.message
    assert len(scripted.received()) == 3  # retries: 2


async def test_a_4xx_is_not_retried(upstream: Upstream, scripted: ScriptedUpstream) -> None:
    scripted.script([{"status": 400}])
    with pytest.raises(ModelFailed, match=r"refused the request \(400\)"):
        await upstream.send(chat, Deadline.after_ms(5000))
    assert len(scripted.received()) == 1


async def test_the_deadline_bounds_a_slow_upstream(
    upstream: Upstream, scripted: ScriptedUpstream
) -> None:
    scripted.script([{"latency_ms": 5000}])
    with pytest.raises(DeadlineExceeded):
        await upstream.send(chat, Deadline.after_ms(300))
    assert len(scripted.received()) == 1


async def test_an_unreachable_upstream_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    from redis_server import free_port

    monkeypatch.setenv("SCRIPTED_KEY", SECRET)
    closed = Upstream(spec_for(f"http://127.0.0.1:{free_port()}", retries=1), "chatty", 1)
    closed.load()
    await closed.start()
    with pytest.raises(ModelUnavailable, match="cannot be reached"):
        await closed.send(chat, Deadline.after_ms(5000))
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
        await upstream.send(chat, Deadline.after_ms(5000))
    with pytest.raises(ModelUnavailable, match="circuit breaker open"):
        await upstream.send(chat, Deadline.after_ms(5000))
    assert len(scripted.received()) == 3


async def test_a_stream_yields_events_and_maps_a_drop(
    upstream: Upstream, scripted: ScriptedUpstream
) -> None:
    def streaming(client: httpx.AsyncClient) -> httpx.Request:
        return client.build_request("POST", "/v1/chat/completions", json={**CHAT, "stream": True})

    scripted.script([{"status": 503, "retry_after": "0"}, {"chunks": ["a ", "b"]}])
    async with upstream.stream(streaming, Deadline.after_ms(5000)) as response:
        lines = [line async for line in response.aiter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    assert json.loads(lines[0].removeprefix("data: "))["choices"][0]["delta"]["content"] == "a "
    scripted.script([{"drop": "mid"}])
    with pytest.raises(ModelFailed, match="dropped"):
        async with upstream.stream(streaming, Deadline.after_ms(5000)) as response:
            [line async for line in response.aiter_lines()]


def test_retry_after_reads_seconds_and_dates() -> None:
    assert retry_after("2") == 2.0
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert retry_after("soon") is None
    assert retry_after(None) is None


async def test_reading_a_stream_past_the_deadline_is_deadline_exceeded(
    upstream: Upstream, scripted: ScriptedUpstream
) -> None:
    def streaming(client: httpx.AsyncClient) -> httpx.Request:
        return client.build_request("POST", "/v1/chat/completions", json={**CHAT, "stream": True})

    scripted.script([{"chunks": ["a ", "b ", "c"], "chunk_delay_ms": 5000}])
    with pytest.raises(DeadlineExceeded):
        async with upstream.stream(streaming, Deadline.after_ms(500)) as response:
            [line async for line in response.aiter_lines()]
