"""What an LLM call may spend and what it spent: a key's budget and token rate before
the call, its tokens, cost and spend after it.

Before the call (at the guard, once the key is known, the prompt counted):
:meth:`LlmAccounting.admit` refuses a key whose spend this period reached its budget
(``OverBudget``, 429, naming the budget and when it resets) and takes the prompt's tokens
from the key's token-rate bucket (``--tpm``: the rate limiter's backend, so shared by
replicas with Redis, and following its ``failure_policy`` when Redis is down).

After the answer (a stream: at its end): :meth:`LlmAccounting.settle` takes the tokens
the upstream's ``usage`` reports (else a local count, ``serving/token_count.py``),
prices them (``core/llm_cost``), adds them to the key's spend (``serving/spend.py``) and
the metrics, and takes the completion's tokens from the token-rate bucket whatever it
holds (the call is made: a debt the next calls wait for).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from servewell.core.llm_cost import FREE, Prices, SpendBudget, Usage, cost_usd
from servewell.core.rate import Rate
from servewell.errors import OverBudget
from servewell.limits import RateLimiter
from servewell.observability import ServingMetrics
from servewell.observability.llm_metrics import LlmMetrics, key_label
from servewell.registry.keys import ApiKey
from servewell.serving.guard import TPM_SUFFIX, judged
from servewell.serving.spend import Clock, SpendLedger, utc_now
from servewell.serving.token_count import TokenCounter

PricesFor = Callable[[str], Prices]
"""A served model's prices (its remote spec's, else ``llm_costs.prices``, else free)."""


class LlmAccounting:
    def __init__(
        self,
        ledger: SpendLedger,
        metrics: ServingMetrics,
        llm_metrics: LlmMetrics,
        prices_for: PricesFor = lambda model: FREE,
        limiter: RateLimiter | None = None,
        counter: TokenCounter | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self.ledger = ledger
        self.metrics = metrics
        self.llm_metrics = llm_metrics
        self.prices_for = prices_for
        self.limiter = limiter
        self.counter = counter or TokenCounter()
        self.clock = clock
        self._budgets: dict[str, SpendBudget] = {}

    async def start(self) -> None:
        await self.ledger.start()

    async def close(self) -> None:
        await self.ledger.close()

    def check_budget(self, key: ApiKey | None) -> None:
        """Raise OverBudget when ``key`` spent its budget this period."""
        if key is None or key.budget is None:
            return
        budget = self._budget(key.budget)
        now = self.clock()
        spent = self.ledger.spent(key.name, budget, now)
        if spent < budget.amount_usd:
            return
        resets = budget.resets_at(now)
        self.metrics.count_rate_limit(key.name, "over_budget")
        raise OverBudget(
            key.name,
            str(budget),
            spent,
            resets.strftime("%Y-%m-%dT%H:%M:%SZ"),
            (resets - now).total_seconds(),
        )

    async def admit(self, key: ApiKey | None, prompt_tokens: int) -> None:
        """Refuse the call when the key spent its budget, or lacks the prompt's tokens in
        its token rate (RateLimited; Unavailable when the shared backend is down and
        ``fail_closed``)."""
        self.check_budget(key)
        if key is None or key.tpm is None or self.limiter is None:
            return
        rate = Rate(key.tpm, 60.0)
        bucket = f"key:{key.name}{TPM_SUFFIX}"
        decision = await self.limiter.take(bucket, rate, min(prompt_tokens, key.tpm))
        if not decision.allowed:
            self.metrics.count_rate_limit(key.name, "limited")
        judged(bucket, decision)

    async def settle(
        self, caller: str | None, key: ApiKey | None, model: str, usage: Usage, prompt_taken: int
    ) -> float:
        """Record a finished call of ``model`` (its cost, returned): spend, metrics and
        the rest of its tokens from the key's token rate (``prompt_taken``: what
        :meth:`admit` took)."""
        cost = cost_usd(usage, self.prices_for(model))
        self.ledger.add(key.name if key is not None else key_label(caller), model, usage, cost)
        self.llm_metrics.count_usage(model, caller, usage, cost)
        if key is not None and key.tpm is not None and self.limiter is not None:
            rest = usage.total_tokens - min(prompt_taken, key.tpm)
            if rest > 0:
                bucket = f"key:{key.name}{TPM_SUFFIX}"
                await self.limiter.take(bucket, Rate(key.tpm, 60.0), rest, force=True)
        return cost

    def usage_of(
        self,
        reported: Mapping[str, Any] | None,
        prompt_tokens: int,
        completion_text: str,
    ) -> Usage:
        """The call's tokens: the upstream's ``usage`` where it gives them, else
        ``prompt_tokens`` (counted locally) and the completion's local count."""
        prompt = _count(reported, "prompt_tokens")
        completion = _count(reported, "completion_tokens")
        return Usage(
            prompt_tokens=prompt if prompt is not None else prompt_tokens,
            completion_tokens=(
                completion if completion is not None else self.counter.count(completion_text)
            ),
        )

    def _budget(self, text: str) -> SpendBudget:
        budget = self._budgets.get(text)
        if budget is None:
            budget = self._budgets[text] = SpendBudget.parse(text)
        return budget


def _count(usage: Mapping[str, Any] | None, name: str) -> int | None:
    """A whole, non-negative token count from ``usage``, or None."""
    value = usage.get(name) if isinstance(usage, Mapping) else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not math.isfinite(value) or value < 0:
        return None
    return int(value)
