"""The scripted upstream answers as its script says, over real HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from scripted_upstream import ScriptedUpstream, scripted_upstream

CHAT = {"model": "m1", "messages": [{"role": "user", "content": "hello there"}]}


@pytest.fixture(scope="module")
def upstream() -> Iterator[ScriptedUpstream]:
    with scripted_upstream() as running:
        yield running


def test_a_completion_echoes_the_last_message_with_usage(upstream: ScriptedUpstream) -> None:
    upstream.script([])
    answer = httpx.post(f"{upstream.url}/v1/chat/completions", json=CHAT).json()
    assert answer["choices"][0]["message"]["content"] == "echo: hello there"
    assert answer["usage"] == {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5}
    models = httpx.get(f"{upstream.url}/v1/models").json()["data"]
    assert {m["id"] for m in models} == {"m1", "scripted"}


def test_a_stream_sends_the_chunks_then_usage_then_done(upstream: ScriptedUpstream) -> None:
    upstream.script([{"chunks": ["4111 1111 ", "1111 1111"]}])
    body = {**CHAT, "stream": True}
    with httpx.stream("POST", f"{upstream.url}/v1/chat/completions", json=body) as response:
        events = [line for line in response.iter_lines() if line]
    assert events[-1] == "data: [DONE]"
    chunks = [json.loads(e.removeprefix("data: ")) for e in events[:-1]]
    pieces = [c["choices"][0]["delta"].get("content") for c in chunks if c["choices"]]
    assert pieces[:2] == ["4111 1111 ", "1111 1111"]
    assert chunks[-1]["usage"]["completion_tokens"] == 4


def test_statuses_retry_after_and_the_record(upstream: ScriptedUpstream) -> None:
    upstream.script([{"status": 429, "retry_after": "1"}, {"status": 503}])
    headers = {"Authorization": "Bearer sk-test"}
    first = httpx.post(f"{upstream.url}/v1/chat/completions", json=CHAT, headers=headers)
    second = httpx.post(f"{upstream.url}/v1/chat/completions", json=CHAT)
    third = httpx.post(f"{upstream.url}/v1/chat/completions", json=CHAT)
    assert (first.status_code, first.headers["retry-after"]) == (429, "1")
    assert (second.status_code, third.status_code) == (503, 200)
    received = upstream.received()
    assert [r["headers"].get("authorization") for r in received] == ["Bearer sk-test", None, None]
    assert received[0]["t"] <= received[1]["t"] <= received[2]["t"]


@pytest.mark.parametrize("drop", ["before", "mid"])
def test_a_dropped_connection_fails_the_client(upstream: ScriptedUpstream, drop: str) -> None:
    upstream.script([{"drop": drop}])
    with pytest.raises(httpx.TransportError):
        httpx.post(f"{upstream.url}/v1/chat/completions", json=CHAT)
    assert httpx.post(f"{upstream.url}/v1/chat/completions", json=CHAT).status_code == 200


def test_v2_metadata_and_infer_echo(upstream: ScriptedUpstream) -> None:
    upstream.script([])
    metadata = httpx.get(f"{upstream.url}/v2/models/echo").json()
    assert metadata["inputs"][0]["name"] == "x"
    tensor = {"name": "x", "datatype": "FP32", "shape": [1, 2], "data": [1.0, 2.0]}
    answer = httpx.post(f"{upstream.url}/v2/models/echo/infer", json={"inputs": [tensor]})
    assert answer.json()["outputs"] == [{**tensor, "name": "y"}]
