"""Packed buckets and the latency quantile sketch: a bucket unpacks as it was packed and
merges as its parts; anything else is refused; percentiles are numpy's to the sketch's
relative error, merged sketches as the whole."""

from __future__ import annotations

import numpy as np
import pytest

from servewell.errors import InvalidData
from servewell.stats.bucket import Bucket, Histogram
from servewell.stats.quantile import RELATIVE_ERROR, QuantileSketch
from servewell.stats.sketch import CategoricalSketch, NumericSketch

EDGES = np.linspace(-2, 2, 41)


def _bucket(seed: int) -> Bucket:
    rng = np.random.default_rng(seed)
    bucket = Bucket(100, 3, 10.0 + seed, 20.0 + seed)
    bucket.latency.update(rng.lognormal(1, 1, 100))
    bucket.features["x"] = Histogram.of(NumericSketch.of(EDGES, rng.normal(0, 1, 97)))
    bucket.prediction = Histogram.of(CategoricalSketch.of(["a", "b"], rng.choice(["a", "c"], 97)))
    return bucket


def test_a_bucket_unpacks_as_packed_and_merges_as_its_parts() -> None:
    one, two = _bucket(1), _bucket(2)
    again = Bucket.from_bytes(one.to_bytes())
    assert (again.logged, again.cached, again.first_at, again.last_at) == (100, 3, 11.0, 21.0)
    assert np.array_equal(again.latency.counts, one.latency.counts)
    assert again.latency.high == one.latency.high
    assert np.array_equal(again.features["x"].counts, one.features["x"].counts)
    assert np.allclose(again.features["x"].sums, one.features["x"].sums)  # type: ignore[arg-type]
    both = Bucket.from_bytes(one.merge(two).to_bytes())
    assert both.logged == 200
    assert both.features["x"].counts.sum() == 194
    assert both.prediction is not None
    assert (
        both.prediction.counts.tolist()
        == (
            one.prediction.counts + two.prediction.counts  # type: ignore[union-attr]
        ).tolist()
    )
    sketch = NumericSketch.from_dict(both.features["x"].to_dict(), EDGES)
    assert sketch.rows == 194
    with pytest.raises(InvalidData, match="other bins"):
        NumericSketch.from_dict(both.features["x"].to_dict(), EDGES[1:])


@pytest.mark.parametrize("data", [b"", b"nonsense", b"SWB1\xff\xff\xff\xff{}"])
def test_anything_else_is_refused(data: bytes) -> None:
    with pytest.raises(InvalidData, match="does not unpack"):
        Bucket.from_bytes(data)


def test_percentiles_are_numpys_to_the_relative_error() -> None:
    rng = np.random.default_rng(3)
    values = np.concatenate([rng.lognormal(2, 1.5, 5000), [0.0, 1e-6]])
    parts = [QuantileSketch() for _ in range(4)]
    for i, part in enumerate(parts):
        part.update(values[i::4])
    whole = parts[0].merge(parts[1]).merge(parts[2]).merge(parts[3])
    percents = [1, 50, 95, 99, 99.9]
    exact = np.percentile(values, percents)
    found = whole.percentiles(percents)
    for mine, theirs in zip(found[1:], exact[1:], strict=True):
        assert mine == pytest.approx(theirs, rel=RELATIVE_ERROR)
    assert whole.percentiles([0, 100]) == [0.0, values.max()]  # the ends are exact
    assert whole.rows == len(values)
