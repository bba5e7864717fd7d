"""``servewell keys create --budget/--tpm`` and ``servewell usage``."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from typer.testing import Result

from servewell.bootstrap import build_services
from servewell.registry.spend import SpendRow, SpendStore
from servewell.settings import Settings

Invoke = Callable[..., Result]


def test_keys_carry_a_budget_and_a_token_rate(invoke: Invoke) -> None:
    created = invoke("keys", "create", "--name", "app", "--budget", "10/day", "--tpm", "20000")
    assert created.exit_code == 0, created.output
    listing = invoke("keys", "list")
    assert "10/day" in listing.stdout
    assert "20,000" in listing.stdout
    (key,) = json.loads(invoke("keys", "list", "--json").stdout)
    assert (key["budget"], key["tpm"]) == ("10/day", 20000)
    for args, message in [
        (["--budget", "10/week"], "budget '10/week' is not like 10/day"),
        (["--tpm", "0"], "--tpm 0: tokens per minute must be from 1"),
    ]:
        refused = invoke("keys", "create", "--name", "other", *args)
        assert refused.exit_code == 2, refused.output
        assert message in refused.stderr
    assert len(json.loads(invoke("keys", "list", "--json").stdout)) == 1


def _spend(home: Path) -> None:
    today = datetime.now(UTC).date()
    days = [(today - timedelta(days=back)).isoformat() for back in (0, 1, 20)]
    services = build_services(Settings(home=home))
    try:
        SpendStore(services.registry).add(
            [
                SpendRow("app", "strong-llm", days[0], 3, 3000, 900, 0.057),
                SpendRow("app", "cheap-llm", days[1], 10, 800, 400, 0.0012),
                SpendRow("anonymous", "local-gen", days[0], 2, 40, 60, 0.0),
                SpendRow("app", "strong-llm", days[2], 1, 10, 10, 9.0),  # before --since 7d
            ]
        )
    finally:
        services.close()


def test_usage_prints_spend_per_key_model_and_day(invoke: Invoke, home: Path) -> None:
    assert invoke("keys", "create", "--name", "app").exit_code == 0
    assert "no LLM spend since" in invoke("usage").stdout
    _spend(home)
    table = invoke("usage")
    assert table.exit_code == 0, table.output
    assert "strong-llm" in table.stdout
    assert "3,000" in table.stdout
    assert "0.0582" in table.stdout  # the total: 0.057 + 0.0012 + 0
    assert "9.0000" not in table.stdout
    rows = json.loads(invoke("usage", "--key", "app", "--json").stdout)
    assert [(row["model"], row["calls"]) for row in rows] == [
        ("cheap-llm", 10),
        ("strong-llm", 3),
    ]
    assert len(json.loads(invoke("usage", "--since", "30d", "--json").stdout)) == 4
    only = json.loads(invoke("usage", "--model", "local-gen", "--json").stdout)
    assert [row["key"] for row in only] == ["anonymous"]
    unknown = invoke("usage", "--key", "ghost")
    assert unknown.exit_code == 4
    assert "no API key named 'ghost'" in unknown.stderr
    bad = invoke("usage", "--since", "soon")
    assert bad.exit_code == 2
    assert "--since" in bad.stderr


def test_usage_names_calls_alike_and_rounds_costs_to_nano_dollars(
    invoke: Invoke, home: Path
) -> None:
    today = datetime.now(UTC).date().isoformat()
    services = build_services(Settings(home=home))
    try:
        store = SpendStore(services.registry)
        for cost_usd in (0.05, 0.01):  # summed by the database: 0.060000000000000005
            store.add([SpendRow("anonymous", "story", today, 1, 100, 50, cost_usd)])
        store.add([SpendRow("anonymous", "tiny", today, 1, 1, 1, 0.0012345678949)])
    finally:
        services.close()
    output = invoke("usage", "--json").stdout
    assert "0.060000000000000005" not in output
    rows = {row["model"]: row for row in json.loads(output)}
    assert rows["story"]["cost_usd"] == 0.06
    assert rows["tiny"]["cost_usd"] == 0.001234568
    assert set(rows["story"]) == {
        "day", "key", "model", "calls", "prompt_tokens", "completion_tokens", "cost_usd",
    }  # fmt: skip
    assert rows["story"]["calls"] == 2
    table = invoke("usage").stdout
    header = next(line for line in table.splitlines() if "day" in line)
    assert "calls" in header
    assert "0.0600" in table
