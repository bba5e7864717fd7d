"""A figure four decimals would round to zero is shown in scientific form."""

from __future__ import annotations

import math

import pytest

from servewell.core.figure import format_figure


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (3.6e-07, "3.6e-07"),
        (-2.5e-05, "-2.5e-05"),
        (0.000999, "0.001"),
        (0.001, "0.0010"),
        (0.9649, "0.9649"),
        (2.68204, "2.6820"),
        (0.0, "0.0000"),
        (math.inf, "inf"),
        (math.nan, "nan"),
    ],
)
def test_a_figure_reads_with_four_decimals_or_in_scientific_form(value: float, shown: str) -> None:
    assert format_figure(value) == shown
