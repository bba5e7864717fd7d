"""Route groups and LLM prices in servewell.yaml: read, and refused in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from servewell.errors import InvalidConfig
from servewell.settings import load_settings

GROUPS = """
route_groups:
  assistant:
    models: [cheap-llm, strong-llm]
    default: cheap-llm
    rules:
      - {prompt_tokens_over: 400, model: strong-llm}
      - {keywords: [analyze, explain in detail, compare, evaluate], model: strong-llm}
      - {classifier: prompt-kind, label: complex, model: strong-llm}
llm_costs:
  prices: {local-gen: {input_per_1k: 0.01, output_per_1k: 0.02}}
"""


def _load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> object:
    config = tmp_path / "servewell.yaml"
    config.write_text(text, encoding="utf-8")
    monkeypatch.setenv("SERVEWELL_CONFIG", str(config))
    return load_settings(home=tmp_path / "home")


def test_groups_and_prices_are_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _load(tmp_path, monkeypatch, GROUPS)
    group = settings.route_groups["assistant"]  # type: ignore[attr-defined]
    assert [rule.name for rule in group.rules] == [
        "prompt_tokens>400",
        "keyword",
        "classifier:prompt-kind=complex",
    ]
    assert group.classifier == "prompt-kind"
    prices = settings.llm_costs.prices["local-gen"]  # type: ignore[attr-defined]
    assert (prices.input_per_1k, prices.output_per_1k) == (0.01, 0.02)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (
            "route_groups: {a: {models: [x], default: y}}",
            "route_groups.a: default 'y' is not one of the group's models",
        ),
        (
            "route_groups: {a: {models: [x], default: x, rules: [{model: x, keyword: [q]}]}}",
            "keyword",
        ),
        ("llm_costs: {prices: {m: {input_per_1k: -1}}}", "llm_costs.prices.m.input_per_1k"),
    ],
)
def test_a_wrong_group_is_one_invalid_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, says: str
) -> None:
    with pytest.raises(InvalidConfig) as raised:
        _load(tmp_path, monkeypatch, text)
    assert says in raised.value.message
    assert "\n" not in raised.value.message
