"""How one model copes with failure: its deadline, isolation, retries, circuit breaker
and fallback chain (``models.<name>.*``, see ``docs/architecture.md``, "Resilience").

Only the shape and the limits of the values are checked here; whether a fallback model
exists and speaks a compatible signature is checked when the server starts, against
the models it serves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from servewell.settings.section import Section

DEFAULT_TIMEOUT_MS = 30_000.0


class BreakerSettings(Section):
    """One model version's circuit breaker. It opens after ``failures_to_open``
    consecutive failures (errors or timeouts), or once at least ``min_requests`` calls in
    the last ``window_s`` seconds failed at a rate of ``error_rate_to_open`` or more;
    open, calls go straight to the fallback chain (or get 503 with ``Retry-After``); after
    ``cooldown_s`` it is half-open: it lets ``half_open_probes`` calls through at a time
    and closes once that many have succeeded (one failure opens it again). A caller's
    own mistakes (a 4xx) and requests shed before reaching the model never count. Each
    server worker process (``--workers N``) has its own breaker; the defaults and why
    are in ``docs/architecture.md``, "Circuit breaker and retries"."""

    enabled: bool = True
    failures_to_open: int = Field(default=5, ge=1)
    error_rate_to_open: float = Field(default=0.5, gt=0, le=1)
    window_s: float = Field(default=30.0, gt=0, le=86_400)
    min_requests: int = Field(default=20, ge=1)
    cooldown_s: float = Field(default=10.0, gt=0, le=86_400)
    half_open_probes: int = Field(default=3, ge=1)


@dataclass(frozen=True, slots=True)
class ModelFallback:
    """Another model (version) answers: ``fraud@2``, ``fraud@stable`` or ``fraud``."""

    ref: str

    def __str__(self) -> str:
        return self.ref


@dataclass(frozen=True, slots=True)
class CacheFallback:
    """The last good answer for the same input, from the response cache, even expired."""

    def __str__(self) -> str:
        return "cache"


@dataclass(frozen=True, slots=True)
class DefaultFallback:
    """A constant answer: a value for each output (every row gets the same)."""

    outputs: dict[str, Any]

    def __str__(self) -> str:
        return "default"


FallbackTarget = ModelFallback | CacheFallback | DefaultFallback


def parse_fallback(item: Any) -> FallbackTarget:
    """One entry of a fallback list: ``"cache"``, ``"name[@version]"`` or
    ``{"default": {output: value, ...}}``; anything else is a ValueError naming it."""
    if isinstance(item, ModelFallback | CacheFallback | DefaultFallback):
        return item
    if isinstance(item, str):
        text = item.strip()
        if text == "cache":
            return CacheFallback()
        if text and " " not in text and text.count("@") <= 1 and not text.endswith("@"):
            return ModelFallback(text)
        raise ValueError(f"fallback {item!r} is not 'cache', 'name' or 'name@version'")
    if isinstance(item, dict) and set(item) == {"default"}:
        outputs = item["default"]
        if isinstance(outputs, dict) and outputs and all(isinstance(k, str) for k in outputs):
            return DefaultFallback(dict(outputs))
        raise ValueError(
            "fallback 'default' needs a value for each output, e.g. {default: {label: 0}}"
        )
    raise ValueError(
        f"fallback {item!r} is not 'cache', 'name[@version]' or {{default: {{output: value}}}}"
    )


class ResilienceSettings(Section):
    """The resilience part of ``models.<name>`` (its fields sit in that section itself:
    ``models.fraud.timeout_ms``); every field has a default."""

    timeout_ms: float = Field(default=DEFAULT_TIMEOUT_MS, gt=0)
    """The longest a request may wait for this model, queue included: past it, 504 (or
    the fallback chain). A ``Request-Timeout`` header (ms) may ask for less, never more."""
    isolation: Literal["in-process", "process"] = "in-process"
    """``process``: the model runs in a child process of its own, restarted if it
    crashes or hangs; ``in-process`` (the default) is the fast path."""
    restart_after_timeouts: int = Field(default=3, ge=1, le=1000)
    """With ``isolation: process``: after this many requests in a row past their
    deadline (no answer from the model in between), its process is taken for hung,
    killed and restarted."""
    retries: int = Field(default=0, ge=0, le=10)
    """Further attempts after a failure (exponential backoff with jitter), within the
    deadline. Local models fail the same way twice, hence 0."""
    breaker: BreakerSettings = Field(default_factory=BreakerSettings)
    fallbacks: list[FallbackTarget] = Field(default_factory=list)
    """Tried in order when the model fails, times out, is shed or its breaker is open."""

    @field_validator("fallbacks", mode="before")
    @classmethod
    def _parse_fallbacks(cls, value: Any) -> list[FallbackTarget]:
        if not isinstance(value, list):
            raise ValueError("fallbacks is a list, e.g. [fraud@2, cache, {default: {label: 0}}]")
        return [parse_fallback(item) for item in value]

    @model_validator(mode="after")
    def _one_of_each_kind(self) -> ResilienceSettings:
        seen: set[str] = set()
        for target in self.fallbacks:
            key = str(target)
            if key in seen:
                raise ValueError(f"fallbacks name {key!r} twice")
            seen.add(key)
        if any(isinstance(t, DefaultFallback) for t in self.fallbacks[:-1]):
            raise ValueError("fallbacks: 'default' always answers, so it comes last")
        return self
