import numpy as np
import pytest
from sklearn import metrics as skm

from servewell.stats import regression_metrics


def test_figures_equal_scikit_learn() -> None:
    rng = np.random.default_rng(0)
    y_true = rng.normal(10, 3, 500)
    y_pred = y_true + rng.normal(0, 1, 500)
    result = regression_metrics(y_true, y_pred)
    assert result.mae == pytest.approx(skm.mean_absolute_error(y_true, y_pred))
    assert result.rmse == pytest.approx(skm.root_mean_squared_error(y_true, y_pred))
    assert result.r2 == pytest.approx(skm.r2_score(y_true, y_pred))


@pytest.mark.parametrize("y_pred", [[2.0, 2.0, 2.0], [1.0, 2.0, 3.0]])
def test_constant_target_matches_scikit_learn(y_pred: list[float]) -> None:
    y_true = np.array([2.0, 2.0, 2.0])
    assert regression_metrics(y_true, np.array(y_pred)).r2 == skm.r2_score(y_true, y_pred)
