"""A remote ``openai`` model behind servewell's OpenAI-compatible endpoint, all real
processes: the scripted upstream, the spec registered with the real CLI, ``servewell
serve``, the official SDK. Completions with the upstream's usage, streams passed
through as they arrive, a card number split across two upstream chunks redacted, a
429 retried after its Retry-After, a failing upstream answered by a cheaper local model
(streamed or not), a client that leaves mid-stream stopping the upstream read, and the
credential never in the log or an answer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml

from chat_models import register_bigram
from scripted_upstream import ScriptedUpstream, scripted_upstream
from servewell.bootstrap import build_services
from servewell.settings import Settings
from serving_models import serve_process

SECRET = "sk-chat-remote-7777-not-real"
SERVED_BY = "x-servewell-served-by"
CLI = str(Path(sys.executable).parent / "servewell")


@pytest.fixture(scope="module")
def upstream() -> Iterator[ScriptedUpstream]:
    with scripted_upstream() as running:
        yield running


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, upstream: ScriptedUpstream) -> Path:
    folder = tmp_path_factory.mktemp("chat-remote")
    home = folder / "home"
    services = build_services(Settings(home=home))
    try:
        register_bigram(services, "story-lite", folder)
    finally:
        services.close()
    spec = {
        "kind": "openai",
        "url": upstream.url,
        "model": "gpt-scripted",
        "credential_env": "LLM_KEY",
        "retries": 2,
        "backoff": {"first_s": 0.01, "max_s": 0.05},
    }
    (folder / "llm.yaml").write_text(yaml.safe_dump(spec))
    for name in ("llm", "llm-raw"):  # llm-raw: no output filters
        registered = subprocess.run(
            [CLI, "register", str(folder / "llm.yaml"), "--name", name, "--format", "remote"],
            env={**os.environ, "SERVEWELL_HOME": str(home)},
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert registered.returncode == 0, registered.stdout + registered.stderr
    small = {**spec, "max_response_bytes": 65536}  # llm-small: a 64 KiB answer at most
    (folder / "llm-small.yaml").write_text(yaml.safe_dump(small))
    registered = subprocess.run(
        [CLI, "register", "llm-small.yaml", "--name", "llm-small", "--format", "remote"],
        env={**os.environ, "SERVEWELL_HOME": str(home)},
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert registered.returncode == 0, registered.stdout + registered.stderr
    config = {
        "models": {
            "llm": {
                "breaker": {"enabled": False},
                "fallbacks": ["story-lite"],
                "output_filters": {"policy": "redact"},
            }
        }
    }
    (folder / "servewell.yaml").write_text(yaml.safe_dump(config))
    return home


@pytest.fixture(scope="module")
def served(home: Path) -> Iterator[tuple[str, list[str]]]:
    unpacked = home.parent / "unpacked"
    unpacked.mkdir(exist_ok=True)
    env = {"TMPDIR": str(unpacked), "LLM_KEY": SECRET}
    log: list[str] = []
    with serve_process(
        home, "--no-auth", "--models", "llm,llm-raw,llm-small,story-lite", env=env, log=log
    ) as (
        url,
        _,
    ):
        yield url, log
    assert SECRET not in "".join(log)


@pytest.fixture(scope="module")
def client(served: tuple[str, list[str]]) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(
        base_url=f"{served[0]}/v1", api_key="unused", max_retries=0, timeout=30
    ) as opened:
        yield opened


def _messages(prompt: str) -> list[Any]:
    return [{"role": "user", "content": prompt}]


def test_a_completion_comes_from_the_upstream_with_its_usage(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    upstream.script([])
    raw = client.chat.completions.with_raw_response.create(
        model="llm", messages=_messages("hello there"), temperature=0.3, max_tokens=9
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == "echo: hello there"
    assert completion.model == "llm@1"
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (2, 3)
    assert SERVED_BY not in raw.headers
    (sent,) = upstream.received()
    assert sent["body"]["model"] == "gpt-scripted"
    assert (sent["body"]["temperature"], sent["body"]["max_tokens"]) == (pytest.approx(0.3), 9)
    assert sent["headers"]["authorization"] == f"Bearer {SECRET}"


def test_a_stream_passes_the_upstreams_chunks_through(
    client: openai.OpenAI, upstream: ScriptedUpstream, served: tuple[str, list[str]]
) -> None:
    upstream.script([{"chunks": ["Once", " upon", " a", " time"], "chunk_delay_ms": 20}])
    stream = client.chat.completions.create(
        model="llm-raw",
        messages=_messages("story"),
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    pieces = [
        c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content
    ]
    assert pieces == ["Once", " upon", " a", " time"]
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 4
    assert upstream.received()[0]["body"]["stream"] is True
    metrics = httpx.get(f"{served[0]}/metrics", timeout=10).text
    assert 'servewell_llm_first_token_seconds_count{model="llm-raw",version="1"}' in metrics


def test_a_filtered_stream_is_sent_behind_its_window(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    chunks = [f" word{n:02}" for n in range(30)]  # 210 characters: past the 64 held back
    upstream.script([{"chunks": chunks}])
    stream = client.chat.completions.create(model="llm", messages=_messages("go"), stream=True)
    pieces = [
        c.choices[0].delta.content for c in stream if c.choices and c.choices[0].delta.content
    ]
    assert len(pieces) > 1
    assert "".join(pieces) == "".join(chunks)


def test_a_card_split_across_two_upstream_chunks_is_redacted(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    upstream.script([{"chunks": ["Your card 4111 1111 ", "1111 1111 is on file."]}])
    stream = client.chat.completions.create(model="llm", messages=_messages("card?"), stream=True)
    pieces = [c.choices[0].delta.content or "" for c in stream if c.choices]
    assert "".join(pieces) == "Your card [REDACTED:card] is on file."
    assert not any("1111" in piece for piece in pieces)


def test_a_card_inside_one_endless_word_across_many_chunks_is_redacted(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    # No whitespace at all: the window cuts inside the word, never inside the card.
    text = "x" * 188 + "4111111111111111" + "y" * 300
    upstream.script([{"chunks": [text[i : i + 5] for i in range(0, len(text), 5)]}])
    stream = client.chat.completions.create(model="llm", messages=_messages("card?"), stream=True)
    sent = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert sent == "x" * 188 + "[REDACTED:card]" + "y" * 300


def test_an_answer_past_max_response_bytes_is_refused_not_buffered(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    upstream.script([{"text": "a" * 200_000}])
    with pytest.raises(openai.InternalServerError, match="failed"):
        client.chat.completions.create(model="llm-small", messages=_messages("big"))
    assert len(upstream.received()) == 1  # not retried
    upstream.script([{"chunks": ["hi ", "a" * 200_000], "chunk_delay_ms": 300}])  # huge event
    stream = client.chat.completions.create(
        model="llm-small", messages=_messages("big"), stream=True
    )
    with pytest.raises(openai.APIError, match="failed"):
        for _ in stream:
            pass
    upstream.script([])
    after = client.chat.completions.create(model="llm-small", messages=_messages("small"))
    assert after.choices[0].message.content == "echo: small"


def test_a_card_in_other_digits_and_separators_across_chunks_is_redacted(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    card = "\uff14\uff11\uff11\uff11\u00a01111\u20111111\u200b1111"  # fullwidth, NBSP, ...
    upstream.script([{"chunks": ["Card ", card[:3], card[3:9], card[9:], " ok."]}])
    stream = client.chat.completions.create(model="llm", messages=_messages("card?"), stream=True)
    sent = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert sent == "Card [REDACTED:card] ok."


def test_a_stream_cut_off_midway_ends_with_an_error_not_done(
    served: tuple[str, list[str]], upstream: ScriptedUpstream
) -> None:
    for drop in ("eof", "mid"):
        upstream.script([{"chunks": ["Once", " upon", " a", " time"], "drop": drop}])
        body = {"model": "llm-raw", "messages": _messages("story"), "stream": True}
        url = f"{served[0]}/v1/chat/completions"
        with httpx.stream("POST", url, json=body, timeout=30) as answer:
            lines = [line for line in answer.iter_lines() if line]
        assert answer.status_code == 200
        assert '"error"' in lines[-1], (drop, lines[-2:])
        assert not any("[DONE]" in line or '"finish_reason":"stop"' in line for line in lines)
        request_id = json.loads(lines[0].removeprefix("data: "))["id"].removeprefix("chatcmpl-")
        failed = json.loads(lines[-1].removeprefix("data: "))["error"]["message"]
        assert failed == f"model 'llm-raw' version 1 failed; request id {request_id}"


def test_a_stream_answered_with_no_events_is_a_failure_not_an_empty_answer(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    upstream.script([{"whole": True}])  # a whole completion: not one server-sent event
    with pytest.raises(openai.InternalServerError, match="failed"):
        client.chat.completions.create(model="llm-raw", messages=_messages("hi"), stream=True)
    upstream.script([{"whole": True}])
    streamed = client.chat.completions.with_raw_response.create(
        model="llm", messages=_messages("the cat"), temperature=0, stream=True
    )
    assert streamed.headers[SERVED_BY] == "story-lite@1; fallback=error"


def test_a_429_is_retried_after_its_retry_after(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    upstream.script([{"status": 429, "retry_after": "1"}])
    completion = client.chat.completions.create(model="llm", messages=_messages("patience"))
    assert completion.choices[0].message.content == "echo: patience"
    first, second = upstream.received()
    assert second["t"] - first["t"] >= 0.9  # Retry-After: 1 (the upstream's own clock)


def test_a_failing_upstream_is_answered_by_the_cheaper_model(
    client: openai.OpenAI, upstream: ScriptedUpstream
) -> None:
    upstream.script([], default={"status": 500})
    raw = client.chat.completions.with_raw_response.create(
        model="llm", messages=_messages("the cat"), temperature=0
    )
    streamed = client.chat.completions.with_raw_response.create(
        model="llm", messages=_messages("the cat"), temperature=0, stream=True
    )
    upstream.script([])
    assert raw.headers[SERVED_BY] == "story-lite@1; fallback=error"
    assert raw.parse().model == "story-lite@1"
    assert raw.parse().choices[0].message.content.startswith("ate the cat")
    assert streamed.headers[SERVED_BY] == "story-lite@1; fallback=error"
    text = "".join(c.choices[0].delta.content or "" for c in streamed.parse() if c.choices)
    assert text == raw.parse().choices[0].message.content


def test_a_client_that_leaves_mid_stream_stops_the_upstream_read(
    served: tuple[str, list[str]], upstream: ScriptedUpstream
) -> None:
    chunks = [f" word{n}" for n in range(200)]
    upstream.script([{"chunks": chunks, "chunk_delay_ms": 100}])  # 20 s in all
    body = {"model": "llm", "messages": _messages("go on"), "stream": True}
    with httpx.stream("POST", f"{served[0]}/v1/chat/completions", json=body, timeout=30) as answer:
        lines = answer.iter_lines()
        for line in lines:
            if "word1" in line:
                break  # leave after the second piece
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and "stream_end" not in upstream.received()[0]:
        time.sleep(0.1)
    assert upstream.received()[0].get("stream_end") == "client_gone"


def test_a_stream_past_its_deadline_ends_with_an_error_event(
    served: tuple[str, list[str]], upstream: ScriptedUpstream, client: openai.OpenAI
) -> None:
    upstream.script([{"chunks": [f" w{n}" for n in range(100)], "chunk_delay_ms": 50}])  # 5 s
    body = {"model": "llm-raw", "messages": _messages("long"), "stream": True}
    headers = {"Request-Timeout": "1000"}
    url = f"{served[0]}/v1/chat/completions"
    with httpx.stream("POST", url, json=body, headers=headers, timeout=30) as answer:
        lines = [line for line in answer.iter_lines() if line]
    assert answer.status_code == 200
    assert '"code":"deadline_exceeded"' in lines[-1]
    assert "[DONE]" not in lines[-1]
    upstream.script([])
    after = client.chat.completions.create(model="llm-raw", messages=_messages("still here"))
    assert after.choices[0].message.content == "echo: still here"
