"""Route groups and LLM prices declared in the settings (``route_groups`` and
``llm_costs`` in ``servewell.yaml``).

A route group is a name a client puts in a chat request's ``model``; its rules, in
order, pick one of its candidate models (``core/llm_routing.choose``), else its
default::

    route_groups:
      assistant:
        models: [cheap-llm, strong-llm]
        default: cheap-llm
        rules:
          - {prompt_tokens_over: 400, model: strong-llm}
          - {keywords: [analyze, explain in detail, compare, evaluate], model: strong-llm}
          - {classifier: prompt-kind, label: complex, model: strong-llm}

Here the shape is checked (each rule has exactly one condition, its model and the
default are among the candidates, one classifier per group); whether the models are
served and the classifier is a text classifier is checked when a server starts
(``serving/llm_routes.RouteGroups.check``).
"""

from __future__ import annotations

from pydantic import Field, model_validator

from servewell.settings.section import Section


class RouteRule(Section):
    """One condition and the model it picks: exactly one of ``prompt_tokens_over``,
    ``keywords`` or ``classifier`` (with ``label``)."""

    model: str
    """The candidate this rule picks when its condition holds."""
    prompt_tokens_over: int | None = Field(default=None, ge=0)
    """Holds when the prompt has more tokens than this."""
    keywords: list[str] | None = None
    """Holds when the users' messages contain one of these words or phrases (whole
    words, any case, any run of spaces between a phrase's words)."""
    classifier: str | None = None
    """A served text classifier model; holds when it gives the prompt ``label``."""
    label: str | None = None

    @model_validator(mode="after")
    def _one_condition(self) -> RouteRule:
        given = [
            name
            for name, value in (
                ("prompt_tokens_over", self.prompt_tokens_over),
                ("keywords", self.keywords),
                ("classifier", self.classifier),
            )
            if value is not None
        ]
        if len(given) != 1:
            raise ValueError(
                "a rule has exactly one of prompt_tokens_over, keywords or classifier"
                + (f" (got {', '.join(given)})" if given else "")
            )
        if (self.classifier is None) != (self.label is None):
            raise ValueError("a classifier rule names both classifier and label")
        if self.keywords is not None and not all(word.strip() for word in self.keywords):
            raise ValueError("keywords must be non-empty words or phrases")
        if self.keywords == []:
            raise ValueError("keywords must name at least one word")
        return self

    @property
    def name(self) -> str:
        """What the ``X-Servewell-Route`` header and the metrics call this rule."""
        if self.prompt_tokens_over is not None:
            return f"prompt_tokens>{self.prompt_tokens_over}"
        if self.classifier is not None:
            return f"classifier:{self.classifier}={self.label}"
        return "keyword"


class RouteGroup(Section):
    """Candidate models, ordered rules, and the default when no rule holds."""

    models: list[str] = Field(min_length=1)
    """The candidates (served model names)."""
    default: str
    """The candidate when no rule holds."""
    rules: list[RouteRule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _candidates(self) -> RouteGroup:
        candidates = set(self.models)
        if self.default not in candidates:
            raise ValueError(f"default {self.default!r} is not one of the group's models")
        for index, rule in enumerate(self.rules):
            if rule.model not in candidates:
                raise ValueError(f"rule {index + 1}'s model {rule.model!r} is not one of models")
        if len({rule.classifier for rule in self.rules if rule.classifier}) > 1:
            raise ValueError("a group's classifier rules all name the same classifier")
        return self

    @property
    def classifier(self) -> str | None:
        """The classifier model one of the rules asks, if any."""
        return next((rule.classifier for rule in self.rules if rule.classifier), None)


class ModelPrices(Section):
    """USD per 1000 tokens of a model without a remote spec's prices."""

    input_per_1k: float = Field(default=0.0, ge=0)
    output_per_1k: float = Field(default=0.0, ge=0)


class LlmCostSettings(Section):
    """Counting tokens, pricing them, and recording each key's spend."""

    prices: dict[str, ModelPrices] = Field(default_factory=dict)
    """Per served model, its prices when its remote spec gives none (a local model
    costs 0 unless named here)."""
    flush_interval_s: float = Field(default=1.0, gt=0, le=60)
    """How often the spend recorded since the last flush is written to the registry
    database, and every key's spend this period re-read (what the budgets of
    replicas share: a key may pass its budget by what replicas spend in about this)."""
