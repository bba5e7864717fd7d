"""The ``openai`` backend against the scripted OpenAI-compatible upstream (a real
process): completions row by row with the request's parameters, the upstream's usage,
streams passed through piece by piece (a card number split across two chunks still
redacted by the sliding window), retries on 429, errors in servewell's words, the
credential sent but never in an error."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from scripted_upstream import ScriptedUpstream, scripted_upstream
from servewell.core.chat_signature import chat_signature, openai_signature
from servewell.core.remote_spec import RemoteSpec
from servewell.errors import InvalidConfig, ModelFailed, Overloaded
from servewell.serving.openai_backend import OpenAIBackend
from servewell.serving.stream_filter import FilteredStream
from servewell.settings import OutputFilterSettings

SECRET = "sk-test-never-shown"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def upstream() -> Iterator[ScriptedUpstream]:
    with scripted_upstream() as running:
        yield running


def _backend(upstream: ScriptedUpstream, **spec: Any) -> OpenAIBackend:
    fields = {"kind": "openai", "url": upstream.url, "model": "gpt-test"} | spec
    fields.setdefault("backoff", {"first_s": 0.01, "max_s": 0.05})
    return OpenAIBackend(RemoteSpec.model_validate(fields), openai_signature(), "llm", 1)


def _inputs(*prompts: str, temperature: float = 0.0, max_tokens: int = 0) -> dict[str, Any]:
    rows = [json.dumps([{"role": "user", "content": p}]).encode() for p in prompts]
    return {
        "messages": np.array(rows, dtype=object),
        "temperature": np.full(len(rows), temperature, dtype=np.float32),
        "max_tokens": np.full(len(rows), max_tokens, dtype=np.int64),
    }


async def _started(backend: OpenAIBackend) -> OpenAIBackend:
    backend.load()
    await backend.start(None, lambda: None)
    return backend


@pytest.mark.anyio
async def test_rows_become_requests_with_their_parameters_and_usage(
    upstream: ScriptedUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLM_KEY", SECRET)
    upstream.script([])
    backend = await _started(_backend(upstream, credential_env="LLM_KEY"))
    try:
        outputs = await backend.predict(_inputs("hello there", "bye", max_tokens=7), None)
    finally:
        await backend.close()
    assert list(outputs["text"]) == ["echo: hello there", "echo: bye"]
    assert list(outputs["finish_reason"]) == ["stop", "stop"]
    assert list(outputs["prompt_tokens"]) == [2, 1]
    assert list(outputs["completion_tokens"]) == [3, 2]
    received = upstream.received()
    assert len(received) == 2
    body = received[0]["body"]
    assert body["model"] == "gpt-test"
    assert (body["temperature"], body["max_tokens"]) == (0.0, 7)
    assert received[0]["headers"]["authorization"] == f"Bearer {SECRET}"


@pytest.mark.anyio
async def test_a_signature_without_the_extras_gets_text_only(upstream: ScriptedUpstream) -> None:
    upstream.script([{"usage": False}])
    spec = RemoteSpec.model_validate({"kind": "openai", "url": upstream.url, "model": "m"})
    backend = await _started(OpenAIBackend(spec, chat_signature(), "llm", 1))
    try:
        outputs = await backend.predict({"messages": _inputs("hi")["messages"]}, None)
    finally:
        await backend.close()
    assert set(outputs) == {"text"}
    assert "temperature" not in upstream.received()[0]["body"]


@pytest.mark.anyio
async def test_a_429_is_retried_after_its_retry_after(upstream: ScriptedUpstream) -> None:
    upstream.script([{"status": 429, "retry_after": "0"}])
    backend = await _started(_backend(upstream, retries=2))
    try:
        outputs = await backend.predict(_inputs("again"), None)
    finally:
        await backend.close()
    assert list(outputs["text"]) == ["echo: again"]
    assert len(upstream.received()) == 2


@pytest.mark.anyio
async def test_errors_are_servewells_and_never_quote_the_credential(
    upstream: ScriptedUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLM_KEY", SECRET)
    upstream.script([], default={"status": 500})
    backend = await _started(_backend(upstream, retries=1, credential_env="LLM_KEY"))
    try:
        with pytest.raises(ModelFailed) as failed:
            await backend.predict(_inputs("x"), None)
        upstream.script([], default={"status": 429, "retry_after": "1"})
        with pytest.raises(Overloaded):
            await backend.predict(_inputs("x"), None)
    finally:
        await backend.close()
    assert SECRET not in str(failed.value)
    monkeypatch.delenv("LLM_KEY")
    with pytest.raises(InvalidConfig) as unset:
        _backend(upstream, credential_env="LLM_KEY").load()
    assert "LLM_KEY" in str(unset.value)


@pytest.mark.anyio
async def test_a_stream_passes_pieces_through_with_the_end(upstream: ScriptedUpstream) -> None:
    upstream.script([{"chunks": ["Hello", " wide", " world"]}])
    backend = await _started(_backend(upstream))
    try:
        stream = await backend.stream(_inputs("hi"), None)
        pieces = [piece async for piece in stream]
    finally:
        await backend.close()
    assert pieces == ["Hello", " wide", " world"]
    assert stream.end.finish_reason == "stop"
    assert stream.end.completion_tokens == 3
    assert upstream.received()[0]["body"]["stream"] is True


@pytest.mark.anyio
async def test_a_card_split_across_two_chunks_is_redacted(upstream: ScriptedUpstream) -> None:
    upstream.script([{"chunks": ["pay with 4111 1111 ", "1111 1111 today, thanks"]}])
    backend = await _started(_backend(upstream))
    rule = OutputFilterSettings(policy="redact")
    try:
        stream = FilteredStream(await backend.stream(_inputs("hi"), None), rule, 16, "llm")
        pieces = [piece async for piece in stream]
    finally:
        await backend.close()
    assert "".join(pieces) == "pay with [REDACTED:card] today, thanks"
    assert not any("4111" in piece or "1111" in piece for piece in pieces)


@pytest.mark.anyio
async def test_block_ends_the_stream_at_the_finding(upstream: ScriptedUpstream) -> None:
    chunks = [
        "first words go out fine and keep going for a while ",
        "then 123-45-",
        "6789 and more",
    ]
    upstream.script([{"chunks": chunks}])
    backend = await _started(_backend(upstream))
    rule = OutputFilterSettings(policy="block")
    try:
        stream = FilteredStream(await backend.stream(_inputs("hi"), None), rule, 16, "llm")
        sent = "".join([piece async for piece in stream])
    finally:
        await backend.close()
    assert "6789" not in sent
    assert "123-45" not in sent
    assert sent.startswith("first words")
    assert stream.end.finish_reason == "content_filter"


@pytest.mark.anyio
async def test_a_connection_dropped_mid_stream_is_a_model_failure(
    upstream: ScriptedUpstream,
) -> None:
    upstream.script([{"drop": "mid", "chunks": ["one ", "two ", "three"]}])
    backend = await _started(_backend(upstream, retries=0))
    try:
        stream = await backend.stream(_inputs("hi"), None)
        with pytest.raises(ModelFailed):
            _ = [piece async for piece in stream]
    finally:
        await backend.close()
