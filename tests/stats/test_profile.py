import json

import numpy as np
import pytest

from servewell.stats import build_profile, categorical_profile, numeric_profile


def test_numeric_profile_counts_missing_and_keeps_quantiles() -> None:
    values = np.array([1.5, 2.0, 3.0, 4.0, np.nan])
    profile = numeric_profile(values, bins=4)
    assert profile["count"] == 5
    assert profile["missing"] == 1
    assert profile["quantiles"]["0.5"] == pytest.approx(2.5)
    assert sum(profile["histogram"]["counts"]) == 4
    assert profile["histogram"]["edges"][0] == 1.5
    assert profile["integer"] is False


@pytest.mark.parametrize(
    "values",
    [[0, 1, 1, 0, 1, 1], [2007, 2008, 2009, 2009], list(range(3, 250, 7)), [0, 5, 5, 5, 400]],
)
def test_whole_numbers_get_whole_bins_centred_on_them(values: list[int]) -> None:
    profile = numeric_profile(np.array(values, dtype=np.float64))
    edges = np.asarray(profile["histogram"]["edges"])
    assert profile["integer"] is True
    assert np.allclose(edges % 1, 0.5)  # every edge between two whole numbers
    widths = np.diff(edges)
    assert np.allclose(widths, widths[0])
    assert widths[0] == round(widths[0]) >= 1
    assert len(widths) <= 10
    assert sum(profile["histogram"]["counts"]) == len(values)


def test_categorical_profile_keeps_frequencies() -> None:
    profile = categorical_profile(np.array(["a", "b", "a", None, "a"], dtype=object), top=1)
    assert profile["frequencies"] == {"a": 0.75}
    assert profile["other"] == pytest.approx(0.25)
    assert profile["missing"] == 1
    assert profile["distinct"] == 2


def test_profile_is_json() -> None:
    profile = build_profile(
        {"x": np.arange(10.0), "device": np.array(["ios", "android"] * 5, dtype=object)},
        {"x": "numeric", "device": "categorical"},
        predictions=np.array([0, 1] * 5),
    )
    again = json.loads(json.dumps(profile))
    assert again["rows"] == 10
    assert again["prediction"]["frequencies"] == {"0": 0.5, "1": 0.5}
