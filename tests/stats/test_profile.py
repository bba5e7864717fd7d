import json

import numpy as np
import pytest

from servewell.errors import InvalidData
from servewell.stats import build_profile, categorical_profile, numeric_profile
from servewell.stats.profile import SAMPLE_ROWS, profile_summary
from servewell.stats.reference import reference_of, references


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


def _training_columns(rows: int) -> tuple[dict, dict]:
    rng = np.random.default_rng(8)
    x = rng.normal(size=rows)
    x[::50] = np.nan
    columns = {
        "x": x,
        "row": np.arange(rows, dtype=np.float64),
        "device": rng.choice(["ios", "android", None], size=rows).astype(object),
    }
    return columns, {"x": "numeric", "row": "numeric", "device": "categorical"}


def test_profile_keeps_what_drift_needs() -> None:
    columns, kinds = _training_columns(30_000)
    profile = json.loads(json.dumps(build_profile(columns, kinds, predictions=columns["x"] > 0)))
    found, missing = references(profile)
    assert set(found) == {"x", "row", "device"}
    assert missing == {}
    x = found["x"]
    assert len(x.psi_edges) == 9  # deciles, open ends
    assert set(x.psi_edges.tolist()) <= set(x.sketch.edges.tolist())
    assert x.sketch.rows == 30_000 - 600
    assert x.sketch.missing == 600
    assert set(found["device"].categories) == {"android", "ios"}
    assert reference_of("prediction", profile["prediction"]).sketch.rows == 30_000


def test_profile_keeps_a_deterministic_sample_of_whole_rows() -> None:
    columns, kinds = _training_columns(30_000)
    first = build_profile(columns, kinds, predictions=np.arange(30_000))
    again = build_profile(columns, kinds, predictions=np.arange(30_000))
    sample = first["sample"]
    assert sample == again["sample"]
    assert sample["rows"] == len(sample["features"]["x"]) == SAMPLE_ROWS
    rows = [int(r) for r in sample["features"]["row"]]
    assert rows == sorted(rows)
    assert len(set(rows)) == SAMPLE_ROWS
    assert sample["prediction"] == rows  # the same rows in every column
    for i, row in enumerate(rows[:500]):
        x = columns["x"][row]
        assert sample["features"]["x"][i] == (None if np.isnan(x) else x)
    assert json.loads(json.dumps(sample)) == sample


def test_a_small_table_is_sampled_whole() -> None:
    columns, kinds = _training_columns(120)
    assert build_profile(columns, kinds)["sample"]["rows"] == 120


def test_a_profile_from_before_drift_bins_still_loads() -> None:
    """The profile format of earlier releases: no ``drift``, no ``sample``."""
    old = {
        "rows": 4,
        "features": {
            "x": {"kind": "numeric", "count": 4, "missing": 0, "mean": 1.0, "std": 1.0,
                  "histogram": {"edges": [0.0, 1.0, 2.0], "counts": [2, 2]}},
            "device": {"kind": "categorical", "count": 5, "missing": 1,
                       "frequencies": {"ios": 0.75, "web": 0.25}, "other": 0.0, "distinct": 2},
            "when": {"kind": "datetime", "count": 4, "missing": 0, "min": "a", "max": "b"},
        },
    }  # fmt: skip
    found, missing = references(old)
    assert set(found) == {"device"}
    assert found["device"].sketch.counts.tolist() == [3, 1, 0]
    assert "profile the training data again" in missing["x"]
    assert "datetime" in missing["when"]
    with pytest.raises(InvalidData, match="no drift bins"):
        reference_of("x", old["features"]["x"])
    assert profile_summary(old)["features"] == old["features"]


def test_the_report_summary_leaves_out_the_sample_and_sketches() -> None:
    columns, kinds = _training_columns(500)
    profile = build_profile(columns, kinds, predictions=columns["x"] > 0)
    summary = profile_summary(profile)
    assert "sample" not in summary
    assert all("drift" not in entry for entry in summary["features"].values())
    assert "drift" not in summary["prediction"]
    assert summary["features"]["x"]["quantiles"] == profile["features"]["x"]["quantiles"]
