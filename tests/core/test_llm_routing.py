"""Route groups' rules, in order: prompt length, keywords, a classifier's label, default."""

from __future__ import annotations

import pytest

from servewell.core.llm_routing import Choice, choose, classifier_needed, matched_keyword
from servewell.settings import RouteGroup

SEEDS = ["analyze", "explain in detail", "compare", "evaluate"]


def group(*rules: dict[str, object]) -> RouteGroup:
    return RouteGroup.model_validate(
        {"models": ["cheap", "strong"], "default": "cheap", "rules": list(rules)}
    )


def test_the_first_rule_that_holds_picks_else_the_default() -> None:
    routes = group(
        {"prompt_tokens_over": 100, "model": "strong"},
        {"keywords": SEEDS, "model": "strong"},
    )
    assert choose(routes, "hi there", 12) == Choice("cheap", "default")
    assert choose(routes, "hi there", 101) == Choice("strong", "prompt_tokens>100")
    assert choose(routes, "hi there", 100) == Choice("cheap", "default")
    assert choose(routes, "Please ANALYZE this", 5) == Choice("strong", "keyword:analyze")


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("Compare these two plans", "compare"),
        ("could you Explain   in\\ndetail why", "explain in detail"),
        ("evaluate.", "evaluate"),
        ("analyzed", None),  # whole words only
        ("psychoanalyze", None),
        ("comparable offers", None),
        ("explain in details", None),
        ("what is the weather", None),
    ],
)
def test_keywords_are_whole_words_in_any_case(text: str, found: str | None) -> None:
    assert matched_keyword(tuple(SEEDS), text.replace("\\n", "\n")) == found


def test_a_classifier_rule_holds_on_its_label_and_is_asked_only_when_reached() -> None:
    routes = group(
        {"keywords": ["compare"], "model": "strong"},
        {"classifier": "prompt-kind", "label": "complex", "model": "strong"},
    )
    assert classifier_needed(routes, "compare a and b", 5) is None  # an earlier rule held
    assert classifier_needed(routes, "hello", 5) == "prompt-kind"
    assert choose(routes, "hello", 5, "complex") == Choice(
        "strong", "classifier:prompt-kind=complex"
    )
    assert choose(routes, "hello", 5, "simple") == Choice("cheap", "default")
    assert choose(routes, "hello", 5, None) == Choice("cheap", "default")
    assert classifier_needed(group({"keywords": ["x"], "model": "strong"}), "y", 1) is None


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"models": ["a"], "default": "b"}, "default 'b' is not one of the group's models"),
        (
            {"models": ["a"], "default": "a", "rules": [{"model": "z", "keywords": ["x"]}]},
            "rule 1's model 'z' is not one of models",
        ),
        (
            {"models": ["a"], "default": "a", "rules": [{"model": "a"}]},
            "exactly one of prompt_tokens_over, keywords or classifier",
        ),
        (
            {
                "models": ["a"],
                "default": "a",
                "rules": [{"model": "a", "keywords": ["x"], "prompt_tokens_over": 3}],
            },
            "(got prompt_tokens_over, keywords)",
        ),
        (
            {"models": ["a"], "default": "a", "rules": [{"model": "a", "classifier": "c"}]},
            "names both classifier and label",
        ),
        (
            {"models": ["a"], "default": "a", "rules": [{"model": "a", "keywords": [" "]}]},
            "non-empty words",
        ),
        (
            {
                "models": ["a"],
                "default": "a",
                "rules": [
                    {"model": "a", "classifier": "c1", "label": "x"},
                    {"model": "a", "classifier": "c2", "label": "y"},
                ],
            },
            "all name the same classifier",
        ),
    ],
)
def test_a_group_that_cannot_route_is_refused(spec: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        RouteGroup.model_validate(spec)
