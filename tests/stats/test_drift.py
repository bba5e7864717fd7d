"""Drift from sketches against the reference implementations on the same data: PSI as
Evidently's ``psi`` stattest on the same bins, KS as ``scipy.stats.ks_2samp``,
chi-square as ``scipy.stats.chisquare``, Wasserstein as Evidently normalises
``scipy.stats.wasserstein_distance``."""

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from servewell.stats.drift import Thresholds, psi
from servewell.stats.reference import (
    FINE_BINS,
    CategoricalReference,
    NumericReference,
    categorical_reference_fields,
    numeric_reference_fields,
    reference_of,
)


def _numeric_reference(values: np.ndarray) -> NumericReference:
    """The reference as a stored profile gives it back (through JSON)."""
    finite = values[np.isfinite(values)]
    entry = {
        "kind": "numeric",
        "std": float(finite.std()),
        "drift": numeric_reference_fields(values),
    }
    reference = reference_of("x", json.loads(json.dumps(entry)))
    assert isinstance(reference, NumericReference)
    return reference


def _categorical_reference(values: np.ndarray) -> CategoricalReference:
    entry = {"kind": "categorical", "drift": categorical_reference_fields(values)}
    reference = reference_of("c", json.loads(json.dumps(entry)))
    assert isinstance(reference, CategoricalReference)
    return reference


def _window(reference, values):
    sketch = reference.new_sketch()
    sketch.update(values)
    return reference.drift(sketch)


# Evidently's PSI, as written in evidently/legacy/calculations/stattests/utils.py
# (get_binned_data, feel_zeroes=True) and psi.py (_psi), commit a4aa4c2b: the shares of
# each bin, empty ones filled, then sum((r - c) * ln(r / c)).
def _evidently_fill(percents: np.ndarray) -> np.ndarray:
    percents = percents.astype(np.float64).copy()
    np.place(
        percents,
        percents == 0,
        min(percents[percents != 0]) / 10**6 if min(percents[percents != 0]) <= 0.0001 else 0.0001,
    )
    return percents


def _evidently_psi(reference_percents: np.ndarray, current_percents: np.ndarray) -> float:
    reference_percents = _evidently_fill(reference_percents)
    current_percents = _evidently_fill(current_percents)
    psi_values = (reference_percents - current_percents) * np.log(
        reference_percents / current_percents
    )
    return float(np.sum(psi_values))


def _evidently_numeric_psi(reference: np.ndarray, current: np.ndarray, edges) -> float:
    """Their numeric branch on our bins: np.histogram shares (the open ends as ±inf)."""
    bins = np.concatenate([[-np.inf], edges, [np.inf]])
    reference_percents = np.histogram(reference, bins)[0] / len(reference)
    current_percents = np.histogram(current, bins)[0] / len(current)
    return _evidently_psi(reference_percents, current_percents)


def _evidently_categorical_psi(reference: pd.Series, current: pd.Series) -> float:
    """Their categorical branch: the shares of every value either side has."""
    keys = list(set(reference.dropna().unique()) | set(current.dropna().unique()))
    ref_feature_dict = {**dict.fromkeys(keys, 0), **dict(reference.value_counts())}
    current_feature_dict = {**dict.fromkeys(keys, 0), **dict(current.value_counts())}
    reference_percents = np.array([ref_feature_dict[key] / len(reference) for key in keys])
    current_percents = np.array([current_feature_dict[key] / len(current) for key in keys])
    return _evidently_psi(reference_percents, current_percents)


NUMERIC_CASES = {
    "unchanged": lambda rng: (rng.normal(size=20_000), rng.normal(size=1000)),
    "shifted": lambda rng: (rng.normal(size=20_000), rng.normal(0.5, 1, size=1000)),
    # Bins empty on one side, then on the other.
    "far away": lambda rng: (rng.normal(size=5000), rng.normal(6, 1, size=800)),
    "narrower": lambda rng: (rng.normal(size=5000), rng.normal(0, 0.05, size=300)),
    # A share below 0.0001: Evidently fills a millionth of the smallest share instead.
    "rare tail": lambda rng: (
        np.concatenate([rng.normal(size=30_000), [50.0, 51.0]]),
        rng.normal(size=2000),
    ),
    "whole numbers": lambda rng: (
        rng.poisson(3, 8000).astype(float),
        rng.poisson(3.6, 1200).astype(float),
    ),
    "binary": lambda rng: (
        (rng.random(4000) < 0.1).astype(float),
        (rng.random(500) < 0.3).astype(float),
    ),
}


@pytest.mark.parametrize("case", NUMERIC_CASES)
def test_numeric_psi_equals_evidently_on_the_same_bins(case: str) -> None:
    reference_values, current = NUMERIC_CASES[case](np.random.default_rng(11))
    reference = _numeric_reference(reference_values)
    found = _window(reference, current).test("psi")
    assert found is not None
    expected = _evidently_numeric_psi(reference_values, current, reference.psi_edges)
    assert found.statistic == pytest.approx(expected, abs=1e-6)
    assert found.drift is bool(expected >= 0.1)
    assert list(found.bins) == reference.psi_edges.tolist()


def test_categorical_psi_equals_evidently() -> None:
    rng = np.random.default_rng(12)
    reference_values = rng.choice(
        ["a", "b", "c", "rare"], size=30_000, p=[0.5, 0.3, 0.19998, 0.00002]
    )
    for current in (
        rng.choice(["a", "b", "c"], size=1000, p=[0.5, 0.3, 0.2]),
        rng.choice(["a", "b", "new"], size=1000, p=[0.3, 0.3, 0.4]),  # "c" gone, "new" came
    ):
        reference = _categorical_reference(reference_values.astype(object))
        found = _window(reference, current.astype(object)).test("psi")
        expected = _evidently_categorical_psi(pd.Series(reference_values), pd.Series(current))
        assert found.statistic == pytest.approx(expected, abs=1e-6)


def test_psi_fills_empty_bins_as_evidently() -> None:
    reference, current = np.array([500, 500, 0, 0]), np.array([0, 10, 10, 0])
    expected = _evidently_psi(reference / 1000, current / 20)
    assert psi(reference, current, threshold=0.1).statistic == pytest.approx(expected, abs=1e-12)


def _ks_case(rng: np.random.Generator, case: int) -> tuple[np.ndarray, np.ndarray]:
    """Reference and window of one of several shapes, from unchanged to clearly drifted
    (most near the test's boundary, where a verdict could differ)."""
    reference_rows = int(rng.choice([3000, 20_000, 60_000]))
    rows = int(rng.choice([200, 1000, 3000]))
    change = rng.uniform(0.0, 0.25)
    shape = case % 4
    if shape == 0:
        return rng.normal(size=reference_rows), rng.normal(change, 1, size=rows)
    if shape == 1:
        return rng.exponential(size=reference_rows), rng.exponential(1 + change, size=rows)
    if shape == 2:
        return (
            rng.poisson(4, reference_rows).astype(float),
            rng.poisson(4 * (1 + change / 2), rows).astype(float),
        )
    return rng.uniform(size=reference_rows), rng.uniform(change / 4, 1, size=rows)


def test_ks_is_within_its_bound_of_scipy_with_the_same_verdict() -> None:
    rng = np.random.default_rng(13)
    verdicts = []
    for case in range(160):
        reference_values, current = _ks_case(rng, case)
        found = _window(_numeric_reference(reference_values), current).test("ks")
        expected = stats.ks_2samp(reference_values, current)
        assert found.statistic <= expected.statistic + 1e-12  # read at a subset of points
        # At most the reference's share of one fine bin (ties in a bin of their own).
        bound = (np.ceil(len(reference_values) / FINE_BINS) + 1) / len(reference_values)
        assert expected.statistic - found.statistic <= bound + 1e-12 <= 0.01
        assert found.drift is bool(expected.pvalue <= 0.05), (case, found, expected)
        verdicts.append(found.drift)
    assert 0.2 < np.mean(verdicts) < 0.8  # the cases straddle the boundary


def test_chi_square_equals_scipy() -> None:
    rng = np.random.default_rng(14)
    categories = ["a", "b", "c", "d", "e"]
    reference_values = rng.choice(categories, size=20_000, p=[0.4, 0.3, 0.15, 0.1, 0.05])
    reference = _categorical_reference(reference_values.astype(object))
    for p in ([0.4, 0.3, 0.15, 0.1, 0.05], [0.35, 0.3, 0.2, 0.1, 0.05], [0.2, 0.2, 0.2, 0.2, 0.2]):
        current = rng.choice(categories, size=1000, p=p)
        found = _window(reference, current.astype(object)).test("chisquare")
        names = list(found.bins)
        counts = pd.Series(reference_values).value_counts()
        f_exp = np.array([counts[n] for n in names]) / len(reference_values) * len(current)
        f_obs = np.array([np.sum(current == n) for n in names])
        expected = stats.chisquare(f_obs, f_exp)
        assert found.statistic == pytest.approx(expected.statistic, rel=1e-12)
        assert found.p_value == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)
        assert found.drift is bool(expected.pvalue < 0.05)


def test_a_category_the_reference_never_had_is_drift() -> None:
    reference = _categorical_reference(np.array(["a", "b"] * 500, dtype=object))
    found = _window(reference, np.array(["a", "b", "zebra"] * 50, dtype=object))
    chi = found.test("chisquare")
    assert chi.statistic == np.inf
    assert chi.p_value == 0.0
    assert chi.drift
    assert chi.to_dict()["statistic"] is None  # JSON has no infinity
    assert found.drift  # PSI sees the "other" bin fill up too


@pytest.mark.parametrize("case", NUMERIC_CASES)
def test_wasserstein_is_scipys_normalised_as_evidently(case: str) -> None:
    reference_values, current = NUMERIC_CASES[case](np.random.default_rng(15))
    found = _window(_numeric_reference(reference_values), current).test("wasserstein")
    norm = max(float(np.std(reference_values)), 0.001)
    expected = stats.wasserstein_distance(reference_values, current) / norm
    assert found.statistic == pytest.approx(expected, abs=0.001)
    assert found.drift is bool(expected >= 0.1)


FEATURES = {
    "normal": lambda rng, n: rng.normal(10, 2, n),
    "lognormal": lambda rng, n: rng.lognormal(0, 0.6, n),
    "uniform": lambda rng, n: rng.uniform(-1, 1, n),
    "counts": lambda rng, n: rng.poisson(5, n).astype(float),
}


def _references(rng: np.random.Generator) -> tuple[dict, dict]:
    training = {name: draw(rng, 20_000) for name, draw in FEATURES.items()}
    return training, {name: _numeric_reference(values) for name, values in training.items()}


@pytest.mark.parametrize("shifted", FEATURES)
def test_a_half_sigma_shift_of_one_feature_is_flagged_in_1000_rows(shifted: str) -> None:
    rng = np.random.default_rng(16)
    training, references = _references(rng)
    for name, draw in FEATURES.items():
        window = draw(rng, 1000)
        if name == shifted:
            window = window + 0.5 * training[name].std()
        drift = _window(references[name], window)
        assert drift.drift is (name == shifted), (name, drift.psi)
        if name == shifted:
            assert drift.test("ks").drift
            assert drift.test("wasserstein").drift


def test_unchanged_windows_rarely_raise_false_alarms() -> None:
    rng = np.random.default_rng(17)
    _, references = _references(rng)
    alarms = dict.fromkeys(FEATURES, 0)
    ks_alarms = dict.fromkeys(FEATURES, 0)
    for _ in range(100):
        for name, draw in FEATURES.items():
            drift = _window(references[name], draw(rng, 1000))
            alarms[name] += bool(drift.drift)
            ks_alarms[name] += bool(drift.test("ks").drift)
    assert max(alarms.values()) <= 5, alarms
    # KS trips alpha = 5% of unchanged windows by construction: about 5 in 100.
    assert max(ks_alarms.values()) <= 12, ks_alarms


def test_an_empty_window_has_no_verdict() -> None:
    reference = _numeric_reference(np.random.default_rng(18).normal(size=1000))
    drift = _window(reference, np.array([np.nan, np.nan]))
    assert drift.drift is None
    assert drift.tests == ()
    assert (drift.rows, drift.missing) == (0, 2)


def test_thresholds_decide_the_verdicts() -> None:
    rng = np.random.default_rng(19)
    reference = _numeric_reference(rng.normal(size=5000))
    sketch = reference.new_sketch()
    sketch.update(rng.normal(0.2, 1, size=1000))
    lenient = reference.drift(sketch, Thresholds(psi=10.0, ks=1e-300, wasserstein=10.0))
    strict = reference.drift(sketch, Thresholds(psi=0.0, ks=1.0, wasserstein=0.0))
    assert not any(t.drift for t in lenient.tests)
    assert all(t.drift for t in strict.tests)
    assert [t.threshold for t in strict.tests] == [0.0, 1.0, 0.0]
