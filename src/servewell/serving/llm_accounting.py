"""What an LLM call may spend and what it spent: a key's budget and token rate before
the call, its tokens, cost and spend after it.

Before the call (at the guard, once the key is known, the prompt counted):
:meth:`LlmAccounting.admit` refuses a key whose spend this period reached its budget
(``OverBudget``, 429, naming the budget and when it resets) and takes the prompt's tokens
from the key's token-rate bucket (``--tpm``: the rate limiter's backend, so shared by
replicas with Redis, and following its ``failure_policy`` when Redis is down).

After the answer (a stream: at its end): :meth:`LlmAccounting.settle` takes the tokens
the upstream's ``usage`` reports (else a local count, ``serving/token_count.py``:
``http/chat.ChatCodec.used``), prices them (``core/llm_cost``), adds them to the key's
spend (``serving/spend.py``) and the metrics, and takes the completion's tokens from
the token-rate bucket whatever it holds (the call is made: a debt the next calls wait
for).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from servewell.core.llm_cost import FREE, Prices, SpendBudget, Usage, cost_usd
from servewell.core.rate import Decision, Rate
from servewell.core.remote_spec import RemoteSpec
from servewell.errors import OverBudget, ServewellError
from servewell.limits import RateLimiter
from servewell.observability import ServingMetrics
from servewell.observability.llm_metrics import LlmMetrics, key_label
from servewell.registry.keys import ApiKey
from servewell.serving.guard import TPM_SUFFIX, judged
from servewell.serving.pool import ModelPool
from servewell.serving.spend import Clock, SpendLedger, utc_now

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
        clock: Clock = utc_now,
    ) -> None:
        self.ledger = ledger
        self.metrics = metrics
        self.llm_metrics = llm_metrics
        self.prices_for = prices_for
        self.limiter = limiter
        self.clock = clock
        self._budgets: dict[str, SpendBudget] = {}
        self._reserved: dict[str, float] = {}
        """USD per key of its calls under way (admitted, not settled): their estimates."""
        self._debits: set[asyncio.Task[Decision]] = set()

    async def start(self) -> None:
        await self.ledger.start()

    async def close(self) -> None:
        await self.debited()
        await self.ledger.close()

    async def debited(self) -> None:
        """Return once the token-rate debits under way are taken."""
        if self._debits:
            await asyncio.gather(*self._debits, return_exceptions=True)

    def check_budget(self, key: ApiKey | None) -> None:
        """Raise OverBudget when ``key`` spent its budget this period."""
        if key is None or key.budget is None:
            return
        budget = self._budget(key.budget)
        now = self.clock()
        spent = self.ledger.spent(key.name, budget, now) + self._reserved.get(key.name, 0.0)
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

    async def admit(
        self, key: ApiKey | None, prompt_tokens: int, estimate_usd: float = 0.0
    ) -> float:
        """Refuse the call when the key spent its budget (its calls under way counted at
        their estimates), or lacks the prompt's tokens in its token rate (RateLimited;
        Unavailable when the shared backend is down and ``fail_closed``); else reserve
        ``estimate_usd`` against the budget (:meth:`reserve`) and return it."""
        self.check_budget(key)
        reserved = self.reserve(key, estimate_usd)  # before any await: no race with others
        if key is None or key.tpm is None or self.limiter is None:
            return reserved
        rate = Rate(key.tpm, 60.0)
        bucket = f"key:{key.name}{TPM_SUFFIX}"
        try:
            decision = await self.limiter.take(bucket, rate, min(prompt_tokens, key.tpm))
            if not decision.allowed:
                self.metrics.count_rate_limit(key.name, "limited")
            judged(bucket, decision)
        except BaseException:
            self.release(key, reserved)
            raise
        return reserved

    def estimate(self, model: str, prompt_tokens: int, max_tokens: int | None) -> float:
        """What a call of ``model`` will cost at least: its prompt, and ``max_tokens``
        of completion when the request names them."""
        return cost_usd(Usage(prompt_tokens, max_tokens or 0), self.prices_for(model))

    def reserve(self, key: ApiKey | None, usd: float) -> float:
        """Count ``usd`` against ``key``'s budget until :meth:`release` (a call under
        way): concurrent calls at the budget's edge see each other. What was reserved."""
        if key is None or key.budget is None or usd <= 0:
            return 0.0
        self._reserved[key.name] = self._reserved.get(key.name, 0.0) + usd
        return usd

    def release(self, key: ApiKey | None, usd: float) -> None:
        if key is None or usd <= 0:
            return
        left = self._reserved.get(key.name, 0.0) - usd
        if left > 1e-12:
            self._reserved[key.name] = left
        else:
            self._reserved.pop(key.name, None)

    def settle(
        self, caller: str | None, key: ApiKey | None, model: str, usage: Usage, prompt_taken: int
    ) -> float:
        """Record a finished call of ``model`` (its cost, returned): spend and metrics,
        and, in the background, the rest of its tokens from the key's token rate
        (``prompt_taken``: what :meth:`admit` took)."""
        cost = cost_usd(usage, self.prices_for(model))
        self.ledger.add(key.name if key is not None else key_label(caller), model, usage, cost)
        self.llm_metrics.count_usage(model, caller, usage, cost)
        if key is not None and key.tpm is not None and self.limiter is not None:
            rest = usage.total_tokens - min(prompt_taken, key.tpm)
            if rest > 0:
                bucket = f"key:{key.name}{TPM_SUFFIX}"
                task = asyncio.ensure_future(
                    self.limiter.take(bucket, Rate(key.tpm, 60.0), rest, force=True)
                )
                self._debits.add(task)  # held until done (the loop keeps weak references)
                task.add_done_callback(self._debits.discard)
        return cost

    def _budget(self, text: str) -> SpendBudget:
        budget = self._budgets.get(text)
        if budget is None:
            budget = self._budgets[text] = SpendBudget.parse(text)
        return budget


def spec_prices(pool: ModelPool) -> Callable[[str], Prices | None]:
    """A served model's prices as its remote spec gives them (its default version's),
    or None (a local model, or not served)."""

    def prices(model: str) -> Prices | None:
        try:
            deployment = pool.get(model)
        except ServewellError:
            return None
        spec = getattr(deployment.backend, "spec", None)
        if not isinstance(spec, RemoteSpec):
            return None
        return Prices(spec.prices.input_per_1k, spec.prices.output_per_1k)

    return prices
