"""Cost-aware routing, spend, budgets and token rates through servewell's
OpenAI-compatible endpoint, all real processes: the scripted upstream (its ``usage``
counts whitespace words), two remote ``openai`` models with prices registered with the
real CLI, a MiniLM text classifier, ``servewell serve`` with API keys, the official
SDK as the client and ``servewell usage`` reading what the server wrote."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml

from scripted_upstream import ScriptedUpstream, scripted_upstream
from servewell.bootstrap import build_services
from servewell.registration.register import register_file
from servewell.registry.spend import SpendRow, SpendStore
from servewell.settings import Settings
from serving_models import create_key, serve_process
from text_models import require_torch, text_model

CLI = str(Path(sys.executable).parent / "servewell")
PRICES = {
    "cheap-llm": {"input_per_1k": 0.5, "output_per_1k": 1.5},
    "strong-llm": {"input_per_1k": 10.0, "output_per_1k": 30.0},
}
SEEDS = ["analyze", "explain in detail", "compare", "evaluate"]
ROUTE = "x-servewell-route"


@pytest.fixture(scope="module")
def upstream() -> Iterator[ScriptedUpstream]:
    with scripted_upstream() as running:
        yield running


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, upstream: ScriptedUpstream) -> Path:
    require_torch()
    classifier = text_model(tmp_path_factory.getbasetemp() / "text-model")
    folder = tmp_path_factory.mktemp("llm-costs")
    home = folder / "home"
    services = build_services(Settings(home=home))
    try:
        register_file(services, classifier, "prompt-kind", format="text")
    finally:
        services.close()
    for name, prices in PRICES.items():
        spec = {"kind": "openai", "url": upstream.url, "model": name, "prices": prices}
        (folder / f"{name}.yaml").write_text(yaml.safe_dump(spec))
        registered = subprocess.run(
            [CLI, "register", str(folder / f"{name}.yaml"), "--name", name, "--format", "remote"],
            env={**os.environ, "SERVEWELL_HOME": str(home)},
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert registered.returncode == 0, registered.stdout + registered.stderr
    rules = [
        {"prompt_tokens_over": 60, "model": "strong-llm"},
        {"keywords": SEEDS, "model": "strong-llm"},
        {"classifier": "prompt-kind", "label": "account", "model": "strong-llm"},
    ]
    config = {
        "route_groups": {
            "assistant": {"models": list(PRICES), "default": "cheap-llm", "rules": rules}
        },
        "llm_costs": {"flush_interval_s": 0.2},
        "models": {name: {"breaker": {"enabled": False}} for name in PRICES},
    }
    (folder / "servewell.yaml").write_text(yaml.safe_dump(config))
    return home


@pytest.fixture(scope="module")
def keys(home: Path) -> dict[str, str]:
    return {
        "spender": create_key(home, "spender"),
        "capped": create_key(home, "capped", budget="0.2/day"),
        "tpm": create_key(home, "tpm", tpm=10),
        "shared": create_key(home, "shared", budget="0.2/day"),
        "racy": create_key(home, "racy", budget="0.2/day"),
    }


@pytest.fixture(scope="module")
def url(home: Path, keys: dict[str, str]) -> Iterator[str]:
    with serve_process(home, "--models", "cheap-llm,strong-llm,prompt-kind") as (served, _):
        yield served


@pytest.fixture(scope="module")
def clients(url: str, keys: dict[str, str]) -> Iterator[dict[str, openai.OpenAI]]:
    """An SDK client per key (the SDK's own retries off: a 429 is what is tested)."""
    made = {
        name: openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=30)
        for name, key in keys.items()
    }
    yield made
    for client in made.values():
        client.close()


def _ask(client: openai.OpenAI, model: str, prompt: str, **options: Any) -> Any:
    return client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": prompt}], **options
    )


def _spend(home: Path, key: str, requests: int) -> list[SpendRow]:
    """The key's rows once they hold ``requests`` calls (flushed every 0.2 s)."""
    services = build_services(Settings(home=home))
    try:
        store = SpendStore(services.registry)
        deadline = time.monotonic() + 30
        while True:
            rows = store.rows("2000-01-01", key=key)
            if sum(row.requests for row in rows) >= requests or time.monotonic() > deadline:
                return rows
            time.sleep(0.1)
    finally:
        services.close()


def test_spend_is_the_upstreams_tokens_times_the_prices(
    url: str, clients: dict[str, openai.OpenAI], home: Path, upstream: ScriptedUpstream
) -> None:
    upstream.script([])
    client = clients["spender"]
    whole = _ask(client, "strong-llm", "hello there", temperature=0.5).parse()
    assert (whole.usage.prompt_tokens, whole.usage.completion_tokens) == (2, 3)
    chunks = list(
        client.chat.completions.create(
            model="cheap-llm",
            messages=[{"role": "user", "content": "one two three"}],
            temperature=0.5,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (3, 4)
    strong_usd = 2 / 1000 * 10.0 + 3 / 1000 * 30.0
    cheap_usd = 3 / 1000 * 0.5 + 4 / 1000 * 1.5
    rows = {row.model: row for row in _spend(home, "spender", 2)}
    assert rows["strong-llm"].cost_usd == pytest.approx(strong_usd)
    assert (rows["strong-llm"].prompt_tokens, rows["strong-llm"].completion_tokens) == (2, 3)
    assert rows["cheap-llm"].cost_usd == pytest.approx(cheap_usd)
    metrics = httpx.get(f"{url}/metrics").text
    assert (
        f'servewell_llm_cost_usd_total{{key="spender",model="strong-llm"}} {strong_usd}' in metrics
    )
    assert 'servewell_llm_tokens_total{key="spender",kind="completion",model="cheap-llm"} 4.0' in (
        metrics
    )
    listed = subprocess.run(
        [CLI, "usage", "--key", "spender", "--json"],
        env={**os.environ, "SERVEWELL_HOME": str(home)},
        cwd=home.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert listed.returncode == 0, listed.stderr
    by_model = {row["model"]: row for row in json.loads(listed.stdout)}
    assert by_model["strong-llm"]["cost_usd"] == pytest.approx(strong_usd)
    table = subprocess.run(
        [CLI, "usage"],
        env={**os.environ, "SERVEWELL_HOME": str(home), "COLUMNS": "120"},
        cwd=home.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "spender" in table.stdout
    assert "strong-llm" in table.stdout


@pytest.mark.parametrize(
    ("prompt", "model", "rule"),
    [
        ("where is my parcel?", "cheap-llm", "default"),
        ("Please COMPARE these two plans", "strong-llm", "keyword:compare"),
        ("can you explain  in detail why", "strong-llm", "keyword:explain in detail"),
        (" ".join(["word"] * 70), "strong-llm", "prompt_tokens>60"),
        ("I can't log in, my password is wrong", "strong-llm", "classifier:prompt-kind=account"),
    ],
)
def test_a_route_group_picks_the_model_and_says_by_which_rule(
    url: str,
    clients: dict[str, openai.OpenAI],
    upstream: ScriptedUpstream,
    prompt: str,
    model: str,
    rule: str,
) -> None:
    upstream.script([])
    raw = _ask(clients["spender"], "assistant", prompt, temperature=0.5)
    assert raw.headers[ROUTE] == f"assistant; model={model}; rule={rule}"
    assert raw.parse().model == f"{model}@1"
    (sent,) = upstream.received()
    assert sent["body"]["model"] == model  # the spec's upstream model name
    metrics = httpx.get(f"{url}/metrics").text
    assert f'servewell_llm_routed_total{{group="assistant",model="{model}",rule="{rule}"}}' in (
        metrics
    )


def _routed(url: str) -> float:
    """How many chat requests the server has routed, by every rule."""
    lines = httpx.get(f"{url}/metrics").text.splitlines()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in lines
        if line.startswith("servewell_llm_routed_total{")
    )


def test_a_caller_without_a_valid_key_is_refused_before_its_prompt_is_routed(
    url: str, upstream: ScriptedUpstream
) -> None:
    """Routing may call a classifier: a caller the guard does not know gets its 401
    without costing that work (nothing routed, nothing sent upstream)."""
    upstream.script([])
    before = _routed(url)
    stranger = openai.OpenAI(base_url=f"{url}/v1", api_key="sw_notakey", max_retries=0)
    with stranger, pytest.raises(openai.AuthenticationError):
        _ask(stranger, "assistant", "I can't log in, my password is wrong")
    assert _routed(url) == before
    assert upstream.received() == []


def test_a_key_over_its_budget_is_refused_naming_it(
    clients: dict[str, openai.OpenAI], upstream: ScriptedUpstream
) -> None:
    upstream.script([])
    client = clients["capped"]
    for _ in range(2):  # $0.11 each (2 prompt, 3 completion tokens): 0.11, then 0.22
        _ask(client, "strong-llm", "analyze this", temperature=0.5)
    with pytest.raises(openai.RateLimitError) as refused:
        _ask(client, "strong-llm", "analyze this", temperature=0.5)
    error = refused.value
    assert error.status_code == 429
    assert error.code == "over_budget"
    assert "the budget of key 'capped' is spent: $0.2200 of $0.2/day (USD)" in error.message
    assert "it resets at " in error.message
    assert 0 < int(error.response.headers["retry-after"]) <= 86_400
    assert len(upstream.received()) == 2  # the refused call never reached the upstream


def test_concurrent_calls_at_the_budgets_edge_see_each_other(
    clients: dict[str, openai.OpenAI], upstream: ScriptedUpstream
) -> None:
    """20 calls at once, each $0.11 (and estimated at its prompt and max_tokens): the
    calls under way count against the $0.2 budget, so only the first few are made."""
    upstream.script([], default={"latency_ms": 500})  # all 20 are in flight together
    client = clients["racy"]

    def ask(_: int) -> str:
        try:
            _ask(client, "strong-llm", "analyze this", temperature=0.5, max_tokens=5)
        except openai.RateLimitError as refused:
            return str(refused.code)
        return "made"

    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(ask, range(20)))
    made = answers.count("made")
    assert answers.count("over_budget") == 20 - made
    received = len(upstream.received())
    upstream.script([])
    assert 1 <= made <= 3
    assert received == made


def test_a_key_over_its_token_rate_waits(
    clients: dict[str, openai.OpenAI], upstream: ScriptedUpstream
) -> None:
    upstream.script([])
    client = clients["tpm"]
    _ask(client, "cheap-llm", "hello there", temperature=0.5)  # 9 tokens counted of 10
    with pytest.raises(openai.RateLimitError) as refused:
        _ask(client, "cheap-llm", "hello there", temperature=0.5)
    assert "rate limit of key 'tpm' in LLM tokens per minute exceeded" in refused.value.message
    assert int(refused.value.response.headers["retry-after"]) >= 1
    assert len(upstream.received()) == 1


def test_two_servers_share_a_keys_spend(
    clients: dict[str, openai.OpenAI], home: Path, upstream: ScriptedUpstream
) -> None:
    """The budget holds across servers (workers, replicas) on one database: what one
    spends, the other refuses on once the first has flushed and the second re-read
    (every 0.2 s here)."""
    upstream.script([])
    with (
        serve_process(home, "--models", "cheap-llm,strong-llm,prompt-kind") as (second, _),
        openai.OpenAI(
            base_url=f"{second}/v1", api_key=clients["shared"].api_key, max_retries=0
        ) as other,
    ):
        _ask(other, "cheap-llm", "hello", temperature=0.5)  # nothing spent yet: $0.0035
        for _ in range(2):  # $0.22 more, on the first server
            _ask(clients["shared"], "strong-llm", "analyze this", temperature=0.5)
        deadline = time.monotonic() + 15
        refused: str | None = None
        while refused is None and time.monotonic() < deadline:
            try:
                _ask(other, "cheap-llm", "hello", temperature=0.5)
            except openai.RateLimitError as error:
                refused = error.message
            time.sleep(0.1)
        assert refused is not None, "the second server never saw the first's spend"
        assert "the budget of key 'shared' is spent" in refused


@pytest.mark.parametrize(
    ("group", "reason"),
    [
        (
            {"models": ["cheap-llm", "ghost-llm"], "default": "cheap-llm"},
            "route_groups.assistant: model 'ghost-llm' is not served here (served: "
            "cheap-llm, prompt-kind, strong-llm)",
        ),
        (
            {
                "models": ["cheap-llm"],
                "default": "cheap-llm",
                "rules": [{"classifier": "strong-llm", "label": "x", "model": "cheap-llm"}],
            },
            "route_groups.assistant: 'strong-llm' is not a text classifier (one BYTES input, "
            "a 'label' output and class labels)",
        ),
    ],
)
def test_servewell_serve_refuses_a_group_it_cannot_route_in_one_line(
    home: Path, group: dict[str, Any], reason: str
) -> None:
    config = home.parent / "wrong-group.yaml"
    config.write_text(yaml.safe_dump({"route_groups": {"assistant": group}}))
    process = subprocess.run(
        [CLI, "serve", "--port", "0", "--no-auth"],
        cwd=home.parent,
        env={
            **os.environ,
            "SERVEWELL_HOME": str(home),
            "SERVEWELL_CONFIG": str(config),
            "SERVEWELL_SERVER__MODELS": '["cheap-llm", "strong-llm", "prompt-kind"]',
        },
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert process.returncode == 9, process.stderr + process.stdout
    assert process.stderr.strip() == f"error: the server failed to start: {reason}"
