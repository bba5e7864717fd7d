import json

import numpy as np
import pytest

from servewell.errors import InvalidData
from servewell.stats.binning import bin_edges
from servewell.stats.sketch import CategoricalSketch, NumericSketch

EDGES = bin_edges(np.random.default_rng(0).normal(size=5000), 200)
CATEGORIES = ("ios", "android", "web")


def _numbers(seed: int, rows: int) -> np.ndarray:
    values = np.random.default_rng(seed).normal(0.3, 1.5, size=rows).astype(object)
    values[::17] = None
    values[5::23] = np.nan
    values[7::31] = np.inf
    return values


def test_numeric_merge_equals_the_sketch_of_both_windows() -> None:
    a, b = _numbers(1, 3000), _numbers(2, 1700)
    merged = NumericSketch.of(EDGES, a).merge(NumericSketch.of(EDGES, b))
    whole = NumericSketch.of(EDGES, np.concatenate([a, b]))
    assert np.array_equal(merged.counts, whole.counts)
    assert np.allclose(merged.sums, whole.sums, rtol=1e-12, atol=1e-9)
    assert merged.missing == whole.missing
    assert whole.rows + whole.missing == 4700


def test_numeric_update_counts_each_value_in_its_bin() -> None:
    sketch = NumericSketch(np.array([0.0, 1.0, 2.0]))
    sketch.update(np.array([-5.0, 0.0, 0.5, 1.0, 1.5, 2.0, 99.0, np.nan, -np.inf]))
    assert sketch.counts.tolist() == [1, 2, 2, 2]  # (-inf,0) [0,1) [1,2) [2,inf)
    assert sketch.sums.tolist() == [-5.0, 0.5, 2.5, 101.0]
    assert sketch.missing == 2


def test_categorical_merge_equals_the_sketch_of_both_windows() -> None:
    rng = np.random.default_rng(3)
    a = rng.choice(["ios", "android", "web", "tv", None], size=2000).astype(object)
    b = rng.choice(["ios", "web", "car", None], size=900).astype(object)
    merged = CategoricalSketch.of(CATEGORIES, a).merge(CategoricalSketch.of(CATEGORIES, b))
    whole = CategoricalSketch.of(CATEGORIES, np.concatenate([a, b]))
    assert np.array_equal(merged.counts, whole.counts)
    assert merged.missing == whole.missing == int(np.sum(np.concatenate([a, b]) == None))  # noqa: E711
    expected_other = sum(v in ("tv", "car") for v in np.concatenate([a, b]))
    assert whole.counts[-1] == expected_other


def test_categorical_values_compare_as_text() -> None:
    sketch = CategoricalSketch.of(("1", "0"), np.array([1, 0, 1, 2, float("nan")], dtype=object))
    assert sketch.counts.tolist() == [2, 1, 1]
    assert sketch.missing == 1


@pytest.mark.parametrize("kind", ["numeric", "categorical"])
def test_json_round_trip_gives_the_same_sketch(kind: str) -> None:
    if kind == "numeric":
        sketch = NumericSketch.of(EDGES, _numbers(4, 2500))
        again = NumericSketch.from_dict(json.loads(json.dumps(sketch.to_dict())), EDGES)
        assert np.array_equal(again.sums, sketch.sums)
    else:
        values = np.random.default_rng(5).choice(["ios", "tv", None], size=300).astype(object)
        sketch = CategoricalSketch.of(CATEGORIES, values)
        again = CategoricalSketch.from_dict(json.loads(json.dumps(sketch.to_dict())), CATEGORIES)
    assert np.array_equal(again.counts, sketch.counts)
    assert again.missing == sketch.missing
    assert again.to_dict() == sketch.to_dict()


def test_a_sketch_on_other_bins_is_refused() -> None:
    stored = NumericSketch.of(EDGES, _numbers(6, 100)).to_dict()
    with pytest.raises(InvalidData, match="other bins"):
        NumericSketch.from_dict(stored, EDGES[1:])
    with pytest.raises(InvalidData, match="do not merge"):
        NumericSketch(EDGES).merge(NumericSketch(EDGES[1:]))
    with pytest.raises(InvalidData, match="other bins"):
        CategoricalSketch.from_dict(CategoricalSketch(CATEGORIES).to_dict(), ("ios", "web"))
    with pytest.raises(InvalidData, match="do not merge"):
        CategoricalSketch(CATEGORIES).merge(CategoricalSketch(("web",)))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"counts": [1, 2]}, "whole numbers"),
        ({"counts": [-1] * (len(EDGES) + 1)}, "whole numbers"),
        ({"sums": [0.0]}, "finite number per bin"),
        ({"missing": -3}, "missing count"),
        ({"kind": "categorical"}, "not a numeric sketch"),
    ],
)
def test_a_damaged_stored_sketch_is_refused(change: dict, message: str) -> None:
    stored = NumericSketch.of(EDGES, _numbers(7, 100)).to_dict() | change
    with pytest.raises(InvalidData, match=message):
        NumericSketch.from_dict(stored, EDGES)
