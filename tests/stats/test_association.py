import numpy as np
import pytest

from servewell.stats import lookup_score


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def test_a_copy_of_the_target_scores_perfectly(rng) -> None:
    y = rng.integers(0, 2, 400)
    leak = y * 10.0 + rng.normal(0, 0.1, 400)
    score = lookup_score(
        leak[:300], y[:300], leak[300:], y[300:], kind="numeric", task="classification"
    )
    assert score == 1.0


def test_noise_scores_near_the_baseline(rng) -> None:
    y = rng.integers(0, 2, 400)
    noise = rng.normal(size=400)
    score = lookup_score(
        noise[:300], y[:300], noise[300:], y[300:], kind="numeric", task="classification"
    )
    assert score < 0.7


def test_an_identifier_does_not_look_predictive(rng) -> None:
    y = rng.integers(0, 2, 400)
    ids = np.array([f"user-{i}" for i in range(400)], dtype=object)
    score = lookup_score(
        ids[:300], y[:300], ids[300:], y[300:], kind="categorical", task="classification"
    )
    assert score < 0.7


def test_regression_lookup_is_r2(rng) -> None:
    x = rng.uniform(0, 1, 1000)
    y = 3 * x
    assert (
        lookup_score(x[:800], y[:800], x[800:], y[800:], kind="numeric", task="regression", bins=50)
        > 0.99
    )
