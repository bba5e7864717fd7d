"""The shape of a traffic policy: arms as the CLI spells them, and their checks."""

from __future__ import annotations

import pytest

from servewell.core.traffic import (
    Arm,
    Shadow,
    check_experiment_id,
    check_header_name,
    check_shadow,
    check_split,
    derived_experiment_id,
)
from servewell.errors import InvalidTrafficPolicy


def test_arms_parse_as_target_equals_weight() -> None:
    assert Arm.parse("2=90") == Arm("2", 90)
    assert Arm.parse(" canary=10 ") == Arm("canary", 10)
    assert Arm.parse("2=90").version == 2
    assert Arm.parse("canary=10").alias == "canary"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2", "should read TARGET=WEIGHT"),
        ("=90", "should read TARGET=WEIGHT"),
        ("2=ninety", "whole percentage, got 'ninety'"),
        ("2=12.5", "whole percentage, got '12.5'"),
        ("2=-5", "whole percentage, got '-5'"),
        ("0=100", "'0' is not a version number"),
        ("v 2=100", "neither a version number nor an alias"),
        ("2²=100", "neither a version number nor an alias"),
    ],
)
def test_bad_arms_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(InvalidTrafficPolicy, match=message) as raised:
        Arm.parse(text)
    assert raised.value.exit_code == 2
    assert raised.value.status == 400


def test_a_split_is_checked_whole() -> None:
    assert check_split([Arm("1", 100)]) == (Arm("1", 100),)
    with pytest.raises(InvalidTrafficPolicy, match="adds up to 99"):
        check_split([Arm("1", 33), Arm("2", 33), Arm("3", 33)])
    with pytest.raises(InvalidTrafficPolicy, match="named twice"):
        check_split([Arm("a", 50), Arm("a", 50)])
    with pytest.raises(InvalidTrafficPolicy, match="weight -10"):
        check_split([Arm("1", 110), Arm("2", -10)])


def test_shadows_headers_and_experiments() -> None:
    assert check_shadow(Shadow("3", 0)) == Shadow("3", 0)
    assert check_shadow(Shadow("3", 100)) == Shadow("3", 100)
    with pytest.raises(InvalidTrafficPolicy, match="got -1"):
        check_shadow(Shadow("3", -1))
    assert check_header_name("X-User-ID") == "X-User-ID"
    for bad in ("", "X User", "X:User", "x" * 65):
        with pytest.raises(InvalidTrafficPolicy):
            check_header_name(bad)
    assert check_experiment_id("spring-2026.b") == "spring-2026.b"
    with pytest.raises(InvalidTrafficPolicy):
        check_experiment_id("-leading-dash")


def test_derived_experiment_ids_depend_on_model_and_targets_in_order() -> None:
    arms = [Arm("2", 90), Arm("3", 10)]
    same = derived_experiment_id("fraud", [Arm("2", 50), Arm("3", 50)])
    assert derived_experiment_id("fraud", arms) == same
    assert derived_experiment_id("fraud", arms[::-1]) != same
    assert derived_experiment_id("churn", arms) != same
    assert check_experiment_id(derived_experiment_id("m" * 128, arms))
