"""The resilience fields of models.<name>: parsed, defaulted, refused with a clear line."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from servewell.settings import Settings
from servewell.settings.resilience import (
    DEFAULT_TIMEOUT_MS,
    CacheFallback,
    DefaultFallback,
    ModelFallback,
)


def test_the_issue_example_parses_into_typed_targets() -> None:
    settings = Settings(
        models={
            "fraud": {
                "timeout_ms": 200,
                "isolation": "process",
                "retries": 0,
                "breaker": {"failures_to_open": 5, "cooldown_s": 10},
                "fallbacks": ["fraud@2", "cache", {"default": {"label": 0}}],
            }
        }
    )
    resilience = settings.model("fraud").resilience
    assert resilience.timeout_ms == 200
    assert resilience.isolation == "process"
    assert resilience.breaker.failures_to_open == 5
    assert resilience.breaker.min_requests == 20  # left out: the default
    assert resilience.fallbacks == [
        ModelFallback("fraud@2"),
        CacheFallback(),
        DefaultFallback({"label": 0}),
    ]


def test_a_model_without_an_entry_gets_the_defaults() -> None:
    resilience = Settings().model("anything").resilience
    assert resilience.timeout_ms == DEFAULT_TIMEOUT_MS
    assert resilience.isolation == "in-process"
    assert resilience.retries == 0
    assert resilience.breaker.enabled
    assert resilience.fallbacks == []


def test_the_environment_sets_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SERVEWELL_MODELS__FRAUD__TIMEOUT_MS", "150")
    monkeypatch.setenv("SERVEWELL_MODELS__FRAUD__FALLBACKS", '["fraud@1", "cache"]')
    resilience = Settings().model("fraud").resilience
    assert resilience.timeout_ms == 150
    assert resilience.fallbacks == [ModelFallback("fraud@1"), CacheFallback()]


@pytest.mark.parametrize(
    ("fallbacks", "says"),
    [
        (["two words"], "is not 'cache', 'name' or 'name@version'"),
        (["fraud@"], "is not 'cache', 'name' or 'name@version'"),
        ([{"default": 3}], "needs a value for each output"),
        ([{"default": {"label": 0}}, "cache"], "'default' always answers, so it comes last"),
        (["cache", "cache"], "name 'cache' twice"),
        ("cache", "fallbacks is a list"),
        ([7], "is not 'cache'"),
    ],
)
def test_a_wrong_fallback_list_is_refused_naming_it(fallbacks: object, says: str) -> None:
    with pytest.raises(ValidationError, match=says):
        Settings(models={"m": {"fallbacks": fallbacks}})


@pytest.mark.parametrize(
    "entry",
    [
        {"timeout_ms": 0},
        {"retries": -1},
        {"isolation": "thread"},
        {"breaker": {"error_rate_to_open": 1.5}},
        {"breaker": {"failures": 3}},
    ],
)
def test_out_of_range_values_are_refused(entry: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Settings(models={"m": entry})


def test_max_queue_wait_is_off_unless_set() -> None:
    assert Settings().server.max_queue_wait_ms is None
    assert Settings(server={"max_queue_wait_ms": 500}).server.max_queue_wait_ms == 500


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "Infinity"])
@pytest.mark.parametrize(
    ("variable", "field"),
    [
        ("SERVEWELL_MODELS__M__TIMEOUT_MS", "models.m.timeout_ms"),
        ("SERVEWELL_MODELS__M__BREAKER__WINDOW_S", "models.m.breaker.window_s"),
        ("SERVEWELL_MODELS__M__BREAKER__COOLDOWN_S", "models.m.breaker.cooldown_s"),
        ("SERVEWELL_SERVER__MAX_QUEUE_WAIT_MS", "server.max_queue_wait_ms"),
        ("SERVEWELL_CACHE__STALE_TTL_S", "cache.stale_ttl_s"),
    ],
)
def test_a_number_that_is_not_finite_is_refused(
    monkeypatch: pytest.MonkeyPatch, variable: str, field: str, value: str
) -> None:
    """``cooldown_s: inf`` used to start a server whose open breaker answered every
    request 500 (OverflowError making its Retry-After) and GET /v1/models/m a bare 500."""
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError, match="finite number") as refused:
        Settings()
    assert ".".join(map(str, refused.value.errors()[0]["loc"])) == field


@pytest.mark.parametrize("field", ["cooldown_s", "window_s"])
def test_a_breaker_period_is_at_most_a_day(field: str) -> None:
    """A cooldown of 1e308 s would be sent as a Retry-After of 309 digits."""
    with pytest.raises(ValidationError, match="less than or equal to 86400"):
        Settings(models={"m": {"breaker": {field: 1e308}}})
