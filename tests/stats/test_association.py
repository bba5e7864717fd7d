"""One feature alone, out of sample: copies, near-copies and target-ordered identifiers
score near perfectly, under imbalance too; noise, random ids and ordinary data do not."""

import numpy as np
import pytest
from sklearn import datasets

from servewell.stats import association
from servewell.stats.binning import bin_edges

#: The leakage check's defaults (training/config.py ChecksConfig).
NEAR_PERFECT_BALANCED_ACCURACY = 0.965
NEAR_PERFECT_ROC_AUC = 0.995


def _looks_leaked(score) -> bool:
    return (
        score.balanced_accuracy >= NEAR_PERFECT_BALANCED_ACCURACY
        or score.roc_auc >= NEAR_PERFECT_ROC_AUC
    )


def _target(rng: np.random.Generator, rows: int, classes: int, positive_share: float | None):
    if positive_share is not None:
        return (rng.random(rows) < positive_share).astype(int)
    return rng.integers(0, classes, rows)


def _noisy_copy(rng: np.random.Generator, y: np.ndarray, classes: int) -> np.ndarray:
    """``y`` with 2% of its values changed to another class."""
    flip = rng.random(len(y)) < 0.02
    return np.where(flip, (y + rng.integers(1, classes, len(y))) % classes, y)


TARGETS = {
    "binary, 3% positive": (2, 0.03),
    "binary, 1% positive": (2, 0.01),
    "binary, balanced": (2, None),
    "3 balanced classes": (3, None),
    "10 balanced classes": (10, None),
}


@pytest.mark.parametrize("target", TARGETS)
def test_copies_near_copies_and_ordered_ids_look_leaked(target: str) -> None:
    classes, share = TARGETS[target]
    rng = np.random.default_rng(0)
    y = _target(rng, 5000, classes, share)
    suspects = {
        "exact copy": y.astype(float),
        "copy with 2% noise": _noisy_copy(rng, y, classes).astype(float),
        "copy as text with 2% noise": _noisy_copy(rng, y, classes).astype(str).astype(object),
        "copy plus gaussian noise": y + rng.normal(0, 0.2, len(y)),
        "id assigned in target order": np.argsort(np.argsort(y + rng.random(len(y)) * 0.5)),
    }
    for name, values in suspects.items():
        kind = "categorical" if values.dtype == object else "numeric"
        score = association(values, y, kind=kind, task="classification")
        assert _looks_leaked(score), (name, score)
    exact = association(suspects["exact copy"], y, kind="numeric", task="classification")
    assert exact.balanced_accuracy == exact.roc_auc == 1.0
    assert exact.average_precision == pytest.approx(1.0)


@pytest.mark.parametrize("target", TARGETS)
def test_noise_and_random_ids_score_at_chance(target: str) -> None:
    classes, share = TARGETS[target]
    rng = np.random.default_rng(1)
    y = _target(rng, 3000, classes, share)
    for values, kind in (
        (rng.normal(size=len(y)), "numeric"),
        (rng.permutation(len(y)).astype(float), "numeric"),
        (np.array([f"user-{i}" for i in range(len(y))], dtype=object), "categorical"),
    ):
        score = association(values, y, kind=kind, task="classification")
        assert score.balanced_accuracy < 0.6
        assert score.roc_auc < 0.6


def test_a_rare_value_never_shares_a_bin_with_a_common_one() -> None:
    values = np.array([0.0] * 970 + [1.0] * 30)
    edges = bin_edges(values, 20)
    keys = np.searchsorted(edges, [0.0, 1.0], side="right")
    assert keys[0] != keys[1]


@pytest.mark.parametrize(
    "loader",
    [
        datasets.load_breast_cancer,
        datasets.load_wine,
        datasets.load_digits,
        datasets.load_iris,
    ],
)
def test_ordinary_features_do_not_look_leaked(loader) -> None:
    data = loader(as_frame=True)
    for name in data.data.columns:
        score = association(
            data.data[name].to_numpy(),
            data.target.to_numpy(),
            kind="numeric",
            task="classification",
        )
        assert not _looks_leaked(score), (name, score)


def test_penguins_do_not_look_leaked() -> None:
    palmerpenguins = pytest.importorskip("palmerpenguins")
    frame = palmerpenguins.load_penguins()
    for target in ("species", "island", "sex"):
        rows = frame.dropna(subset=[target])
        for name in rows.columns.drop(target):
            kind = "numeric" if rows[name].dtype.kind in "if" else "categorical"
            score = association(
                rows[name].to_numpy(), rows[target].to_numpy(), kind=kind, task="classification"
            )
            assert not _looks_leaked(score), (target, name, score)


def test_regression_copy_and_ordered_id_explain_the_target() -> None:
    rng = np.random.default_rng(2)
    y = rng.lognormal(3, 1, 2000)
    ordered = np.argsort(np.argsort(y)).astype(float)
    for values in (y * 1.0, ordered, y + rng.normal(0, 0.01, len(y))):
        assert association(values, y, kind="numeric", task="regression").r2 > 0.95
    noise = association(rng.normal(size=len(y)), y, kind="numeric", task="regression")
    assert noise.r2 < 0.05


def test_diabetes_features_do_not_explain_the_target_alone() -> None:
    data = datasets.load_diabetes(as_frame=True)
    best = max(
        association(
            data.data[n].to_numpy(), data.target.to_numpy(), kind="numeric", task="regression"
        ).r2
        for n in data.data.columns
    )
    assert 0.2 < best < 0.5  # bmi: real signal, far from a copy


def test_missing_values_are_a_key_of_their_own() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 1000)
    values = np.where(y == 1, np.nan, rng.normal(size=1000))  # missing exactly when positive
    score = association(values, y, kind="numeric", task="classification")
    assert score.balanced_accuracy == 1.0
    text = np.where(y == 1, None, "present").astype(object)
    assert association(text, y, kind="categorical", task="classification").roc_auc == 1.0
