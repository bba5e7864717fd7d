"""Spend, budgets and token rates of LLM calls, on the registry database both
backends and the rate limiter backends (memory and Redis), without HTTP."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from prometheus_client import CollectorRegistry

from servewell.bootstrap import Services
from servewell.core.llm_cost import Prices, Usage
from servewell.errors import OverBudget, RateLimited
from servewell.limits import MemoryRateLimiter, RateLimiter, RedisRateLimiter
from servewell.observability import ServingMetrics
from servewell.observability.llm_metrics import LlmMetrics
from servewell.registry.keys import ApiKey, ApiKeyStore
from servewell.registry.spend import SpendStore
from servewell.serving.llm_accounting import LlmAccounting
from servewell.serving.spend import SpendLedger

pytestmark = pytest.mark.anyio
NOW = datetime(2026, 12, 1, 22, 0, tzinfo=UTC)
PRICES = {"strong": Prices(input_per_1k=10.0, output_per_1k=30.0)}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _accounting(
    services: Services, limiter: RateLimiter | None = None
) -> tuple[LlmAccounting, ServingMetrics]:
    metrics = ServingMetrics(CollectorRegistry())
    ledger = SpendLedger(SpendStore(services.registry), interval_s=30, clock=lambda: NOW)
    accounting = LlmAccounting(
        ledger,
        metrics,
        LlmMetrics(metrics),
        lambda model: PRICES.get(model, Prices()),
        limiter,
        clock=lambda: NOW,
    )
    return accounting, metrics


def _key(services: Services, **options: object) -> ApiKey:
    return ApiKeyStore(services.registry).create("app", **options)[0]  # type: ignore[arg-type]


async def test_spend_is_tokens_times_prices_in_the_metrics_and_the_database(
    services: Services,
) -> None:
    accounting, metrics = _accounting(services)
    await accounting.start()
    key = _key(services)
    cost = accounting.settle("app", key, "strong", Usage(1200, 300), 1200)
    assert cost == pytest.approx(1.2 * 10 + 0.3 * 30)
    accounting.settle("ip:10.1.2.3", None, "local", Usage(7, 5), 7)
    await accounting.close()  # writes what it holds
    rows = SpendStore(services.registry).rows("2026-12-01")
    assert [(r.key, r.model, r.prompt_tokens, r.completion_tokens) for r in rows] == [
        ("anonymous", "local", 7, 5),
        ("app", "strong", 1200, 300),
    ]
    assert rows[1].cost_usd == pytest.approx(21.0)
    text = metrics.render()[0].decode()
    assert 'servewell_llm_tokens_total{key="app",kind="prompt",model="strong"} 1200.0' in text
    assert 'servewell_llm_cost_usd_total{key="app",model="strong"} 21.0' in text
    assert 'servewell_llm_cost_usd_total{key="anonymous",model="local"} 0.0' in text
    assert "10.1.2.3" not in text


async def test_a_key_over_its_budget_is_refused_naming_it_and_when_it_resets(
    services: Services,
) -> None:
    accounting, _ = _accounting(services)
    await accounting.start()
    key = _key(services, budget="20/day")
    await accounting.admit(key, 100)
    accounting.settle("app", key, "strong", Usage(1200, 300), 100)  # $21
    with pytest.raises(OverBudget) as refused:
        await accounting.admit(key, 100)
    error = refused.value
    assert error.message == (
        "the budget of key 'app' is spent: $21.0000 of $20/day (USD); "
        "it resets at 2026-12-02T00:00:00Z"
    )
    assert error.retry_after_s == 2 * 3600
    assert error.detail == {
        "key": "app",
        "budget": "20/day",
        "spent_usd": 21.0,
        "resets_at": "2026-12-02T00:00:00Z",
    }
    assert error.status == 429
    await accounting.admit(None, 100)  # no key, no budget
    await accounting.close()


async def test_replicas_share_the_spend_through_the_database(services: Services) -> None:
    first, _ = _accounting(services)
    second, _ = _accounting(services)
    await first.start()
    await second.start()
    key = _key(services, budget="20/month")
    first.settle("app", key, "strong", Usage(1000, 400), 0)  # $22 on the first
    await second.admit(key, 10)  # the second has not heard yet
    await first.ledger.flush()
    await second.ledger.flush()  # re-reads every key's spend
    with pytest.raises(OverBudget, match=r"\$22\.0000 of \$20/month"):
        await second.admit(key, 10)
    await first.close()
    await second.close()
    assert SpendStore(services.registry).rows("2026-12-01")[0].requests == 1


@pytest.fixture(params=["memory", "redis"])
async def limiter(request: pytest.FixtureRequest) -> AsyncIterator[RateLimiter]:
    backend: RateLimiter
    if request.param == "memory":
        backend = MemoryRateLimiter()
    else:
        backend = RedisRateLimiter(
            request.getfixturevalue("redis_url"), prefix=f"test:{uuid.uuid4().hex}:"
        )
    yield backend
    await backend.close()


async def test_a_key_over_its_token_rate_waits(
    sqlite_services: Services, limiter: RateLimiter
) -> None:
    accounting, metrics = _accounting(sqlite_services, limiter)
    key = _key(sqlite_services, tpm=1000)
    await accounting.admit(key, 400)  # 400 of 1000 taken
    accounting.settle("app", key, "local", Usage(400, 500), 400)  # 500 more: 100 left
    await accounting.debited()
    with pytest.raises(RateLimited) as refused:
        await accounting.admit(key, 200)
    assert refused.value.message.startswith(
        "rate limit of key 'app' in LLM tokens per minute exceeded; retry in"
    )
    assert 1 <= refused.value.retry_after_s <= 7  # 100 tokens at 1000/minute
    await accounting.admit(key, 50)
    with pytest.raises(RateLimited):  # a prompt longer than the rate waits for a full bucket
        await accounting.admit(key, 5000)
    text = metrics.render()[0].decode()
    assert 'servewell_rate_limit_decisions_total{caller="app",outcome="limited"} 2.0' in text


def test_prices_come_from_the_spec_else_the_settings_else_free(sqlite_services: Services) -> None:
    from servewell.bootstrap import build_llm, build_protection
    from servewell.core.llm_cost import FREE
    from servewell.core.validation import InputLimits
    from servewell.serving.pool import ModelPool
    from servewell.serving.predictor import Predictor
    from servewell.settings import Settings

    settings = Settings.model_validate(
        {
            "home": sqlite_services.settings.home,
            "llm_costs": {"prices": {"local-gen": {"input_per_1k": 0.01, "output_per_1k": 0.02}}},
        }
    )
    metrics = ServingMetrics(CollectorRegistry())
    predictor = Predictor(ModelPool(sqlite_services, [], metrics), InputLimits())
    protection = build_protection(settings, sqlite_services)
    llm = build_llm(settings, sqlite_services, metrics, LlmMetrics(metrics), predictor, protection)
    assert llm.accounting.prices_for("local-gen") == Prices(0.01, 0.02)
    assert llm.accounting.prices_for("unpriced") == FREE
