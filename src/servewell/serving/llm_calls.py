"""The chat path's LLM steps, around the gateway's (``http/chat_route.chat_call`` and
``http/app.ServewellApp._chat`` call them):

1. before resolving (:meth:`LlmCalls.open`): a ``model`` naming a route group becomes
   the model its rules choose (``serving/llm_routes``); the prompt's tokens are counted
   when a step needs them (:meth:`LlmCall.prompt_tokens`);
2. once the guard admitted the caller (``Call.admitted``, :meth:`LlmCalls.admit`): the
   key's budget and token rate (``serving/llm_accounting``); the call's estimated cost
   counts against the budget until it is over (:meth:`LlmCalls.release`);
3. once the answer's usage is known, whole or at a stream's end
   (``ChatCodec.on_usage`` = :meth:`LlmCalls.used`): cost, spend, metrics, token rate.

What step 1 learnt rides on the :class:`LlmCall`, in the ``Call`` and, for step 3 (a
stream's end comes after the gateway returned its reply), in :data:`CURRENT_CALL`,
which ``_chat`` sets for the whole request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass

from servewell.core.chat import ChatRequest
from servewell.core.llm_cost import Usage
from servewell.core.llm_routing import Choice
from servewell.core.ref import ModelRef
from servewell.observability import current_request
from servewell.registry.keys import ApiKey
from servewell.serving.llm_accounting import LlmAccounting
from servewell.serving.llm_routes import RouteGroups, route_header
from servewell.serving.token_count import TokenCounter, users_text


@dataclass(slots=True)
class LlmCall:
    """One chat request's LLM facts, as they become known."""

    messages: tuple[tuple[str, str], ...]
    counter: TokenCounter
    group: str | None = None
    choice: Choice | None = None
    key: ApiKey | None = None
    caller: str = ""
    taken: int = 0
    """Tokens taken from the key's token rate before the call."""
    model: str = ""
    """The model resolved for the call (a route group's choice)."""
    max_tokens: int | None = None
    reserved_usd: float = 0.0
    """Its estimate, counted against the key's budget while it is under way."""

    _prompt_tokens: int | None = None

    def prompt_tokens(self) -> int:
        """The prompt's tokens, counted when first needed (a route rule on length, a
        budget's estimate, a token rate): most calls need no count before the answer,
        whose usage the upstream reports (~30 µs of a call, with tiktoken)."""
        if self._prompt_tokens is None:
            self._prompt_tokens = self.counter.count_prompt(self.messages)
        return self._prompt_tokens

    def headers(self) -> list[tuple[bytes, bytes]]:
        """``X-Servewell-Route`` when a route group chose the model."""
        if self.group is None or self.choice is None:
            return []
        return [route_header(self.group, self.choice)]


CURRENT_CALL: ContextVar[LlmCall | None] = ContextVar("servewell_llm_call", default=None)


class LlmCalls:
    def __init__(
        self,
        routes: RouteGroups,
        accounting: LlmAccounting,
        counter: TokenCounter,
        keys: Callable[[str], ApiKey | None] = lambda name: None,
    ) -> None:
        self.routes = routes
        self.accounting = accounting
        self.counter = counter
        self.keys = keys
        """The active key of a caller's name (the key ring's), for budgets and rates."""

    async def start(self) -> None:
        """Start the accounting; with route groups (every chat request is counted before
        it is routed), read the tokenizer now, in a thread, rather than on the event
        loop at the first request."""
        await self.accounting.start()
        if self.routes.groups:
            await asyncio.to_thread(self.counter.load)

    async def close(self) -> None:
        await self.accounting.close()

    async def open(self, ref: ModelRef, chat: ChatRequest) -> tuple[LlmCall, ModelRef]:
        """The call's facts, and the model to resolve: ``ref``, or the model its route
        group chooses for this prompt."""
        call = LlmCall(chat.messages, self.counter, max_tokens=chat.max_tokens)
        call.model = ref.name
        if ref.name in self.routes and ref.version is None and ref.alias is None:
            choice = await self.routes.route(
                ref.name, users_text(chat.messages), call.prompt_tokens()
            )
            call.group, call.choice, call.model = ref.name, choice, choice.model
            return call, ModelRef(choice.model)
        return call, ref

    async def admit(self, call: LlmCall) -> None:
        """The caller's budget and token rate (the guard named the caller)."""
        record = current_request()
        call.caller = record.caller if record is not None else ""
        key = call.key = self.keys(call.caller) if call.caller else None
        if key is None or (key.budget is None and key.tpm is None):
            return  # nothing to check, nothing to reserve
        accounting = self.accounting
        tokens = call.prompt_tokens()
        estimate = accounting.estimate(call.model, tokens, call.max_tokens)
        call.reserved_usd = await accounting.admit(key, tokens, estimate)
        if key.tpm is not None:
            call.taken = min(tokens, key.tpm)

    def release(self, call: LlmCall) -> None:
        """The call is over (answered, failed or abandoned): its estimate no longer
        counts against the budget."""
        self.accounting.release(call.key, call.reserved_usd)
        call.reserved_usd = 0.0

    def used(self, chat: ChatRequest, model: str, usage: Usage) -> None:
        """An answer's usage (``model``: ``name@version``, the one that answered)."""
        call = CURRENT_CALL.get()
        name = model.rpartition("@")[0] or model
        if call is None:  # not through the chat entry point: no key known
            record = current_request()
            caller = record.caller if record is not None else ""
            self.accounting.settle(caller, None, name, usage, 0)
            return
        self.accounting.settle(call.caller, call.key, name, usage, call.taken)
        self.release(call)
