"""The LLM calls' metrics: the time to a streamed answer's first token, which model a
route group chose and by which rule, the tokens each key used per model, and what they
cost.

Counted once per LLM call (calls that take tens of milliseconds at least), straight to
prometheus_client's objects (per-process files with ``--workers N``), each label set
looked up once. Labels are bounded: groups, models and rules come from the settings and
the served models, ``key`` is a key's name or ``anonymous`` (never a client address:
:func:`key_label`).
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from servewell.core.llm_cost import Usage
from servewell.observability.metrics import ANONYMOUS, LATENCY_BUCKETS_S, ServingMetrics


def key_label(caller: str | None) -> str:
    """A key's name as it is; any other caller (``ip:<address>``, none) is anonymous."""
    return ANONYMOUS if not caller or ":" in caller else caller


class LlmMetrics:
    def __init__(self, serving: ServingMetrics) -> None:
        registry = serving.registry
        self.first_token_s = Histogram(
            "servewell_llm_first_token_seconds",
            "Time from a streamed chat completion's start to its first piece of text "
            "(the model's or upstream's answer, before it is sent).",
            ("model", "version"),
            buckets=LATENCY_BUCKETS_S,
            registry=registry,
        )
        self.routed = Counter(
            "servewell_llm_routed",
            "Chat requests a route group answered, by group, the model it chose and the "
            "rule that chose it (default: none held).",
            ("group", "model", "rule"),
            registry=registry,
        )
        self.tokens = Counter(
            "servewell_llm_tokens",
            "LLM tokens by model, key (its name; 'anonymous' without one) and kind "
            "(prompt, completion): the upstream's usage, else a local count.",
            ("model", "key", "kind"),
            registry=registry,
        )
        self.cost_usd = Counter(
            "servewell_llm_cost_usd",
            "What LLM calls cost in US dollars (tokens x the model's prices), by model and key.",
            ("model", "key"),
            registry=registry,
        )
        self._children: dict[tuple[str, ...], Counter] = {}

    def first_token(self, model: str, version: int, elapsed_s: float) -> None:
        self.first_token_s.labels(model, str(version)).observe(elapsed_s)

    def count_route(self, group: str, model: str, rule: str) -> None:
        self._child(self.routed, "routed", group, model, rule).inc()

    def count_usage(self, model: str, caller: str | None, usage: Usage, cost_usd: float) -> None:
        key = key_label(caller)
        self._child(self.tokens, "tokens", model, key, "prompt").inc(usage.prompt_tokens)
        self._child(self.tokens, "tokens", model, key, "completion").inc(usage.completion_tokens)
        if cost_usd > 0:
            self._child(self.cost_usd, "cost", model, key).inc(cost_usd)
        else:  # the series exists (at 0) for every model a key used
            self._child(self.cost_usd, "cost", model, key)

    def _child(self, counter: Counter, family: str, *labels: str) -> Counter:
        found = self._children.get((family, *labels))
        if found is None:
            if len(self._children) >= 100_000:  # keys x models: bounded, but be sure
                self._children.clear()
            found = self._children[(family, *labels)] = counter.labels(*labels)
        return found
