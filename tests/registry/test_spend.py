"""LLM spend rows: counts added (never overwritten) per key, model and day, on both
registry backends; keys keep their budget and token rate."""

from __future__ import annotations

import threading

from servewell.bootstrap import Services
from servewell.registry.keys import ApiKeyStore
from servewell.registry.spend import SpendRow, SpendStore


def _row(key: str, model: str, day: str, cost: float, tokens: int = 10) -> SpendRow:
    return SpendRow(key, model, day, 1, tokens, 2 * tokens, cost)


def test_batches_add_to_the_day_s_row(services: Services) -> None:
    store = SpendStore(services.registry)
    store.add([_row("ci", "gpt", "2026-12-01", 0.5), _row("ci", "local", "2026-12-01", 0.0)])
    store.add([_row("ci", "gpt", "2026-12-01", 0.25, tokens=5), _row("ci", "gpt", "2026-12-02", 1)])
    store.add([])
    rows = store.rows("2026-12-01")
    assert [(r.day, r.model, r.requests, r.prompt_tokens, r.completion_tokens) for r in rows] == [
        ("2026-12-01", "gpt", 2, 15, 30),
        ("2026-12-01", "local", 1, 10, 20),
        ("2026-12-02", "gpt", 1, 10, 20),
    ]
    assert rows[0].cost_usd == 0.75
    assert [r.day for r in store.rows("2026-12-02")] == ["2026-12-02"]
    assert store.rows("2026-12-01", model="local")[0].model == "local"
    assert store.rows("2026-12-01", key="other") == []
    assert store.spent_by_day("2026-12-01") == {
        ("ci", "2026-12-01"): 0.75,
        ("ci", "2026-12-02"): 1.0,
    }


def test_writers_at_once_lose_no_counts(services: Services) -> None:
    """Replicas flush the same key, model and day concurrently: every count stays."""
    store = SpendStore(services.registry)

    def flush() -> None:
        for _ in range(5):
            store.add([_row("ci", "gpt", "2026-12-01", 0.1)])

    threads = [threading.Thread(target=flush) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    (row,) = store.rows("2026-12-01")
    assert row.requests == 20
    assert abs(row.cost_usd - 2.0) < 1e-9


def test_keys_keep_their_budget_and_token_rate(services: Services) -> None:
    keys = ApiKeyStore(services.registry)
    key, _ = keys.create("app", budget="$10 / day", tpm=5000)
    assert (key.budget, key.tpm) == ("10/day", 5000)
    plain, _ = keys.create("plain")
    assert (plain.budget, plain.tpm) == (None, None)
