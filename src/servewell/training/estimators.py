"""The estimators ``servewell train`` offers, by name, for classification and regression.

The default, gradient boosting, needs no scaling, no tuning and no convergence on
ordinary tables, and converts to ONNX (scikit-learn's HistGradientBoosting does not yet:
skl2onnx writes a boolean where ONNX wants an integer). The MLP trains epoch by epoch
and must converge within ``max_epochs``.
"""

from __future__ import annotations

from typing import Any

from servewell.core.task import Task
from servewell.errors import InvalidConfig
from servewell.training.config import EstimatorConfig, EstimatorKind

DEFAULTS: dict[str, dict[str, Any]] = {
    "mlp": {"hidden_layer_sizes": (64, 32)},
    "logistic": {"max_iter": 1000},
    "random_forest": {"n_estimators": 100, "n_jobs": 1},
    "gradient_boosting": {},
}


def estimator_class(kind: EstimatorKind, task: Task) -> Any:
    """The scikit-learn class of ``kind`` for ``task``; InvalidConfig when it has none."""
    from sklearn.ensemble import (
        GradientBoostingClassifier,
        GradientBoostingRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    classes: dict[str, tuple[Any, Any]] = {
        "mlp": (MLPClassifier, MLPRegressor),
        "logistic": (LogisticRegression, None),
        "random_forest": (RandomForestClassifier, RandomForestRegressor),
        "gradient_boosting": (GradientBoostingClassifier, GradientBoostingRegressor),
    }
    classifier, regressor = classes[kind]
    cls = classifier if task == "classification" else regressor
    if cls is None:
        raise InvalidConfig(
            f"estimator '{kind}' is a classifier, but the target is numeric "
            "(regression); use gradient_boosting, random_forest or mlp, or set task: "
            "classification"
        )
    return cls


def make_estimator(config: EstimatorConfig, task: Task) -> Any:
    """An unfitted scikit-learn estimator; bad or foreign parameters are an InvalidConfig."""
    cls = estimator_class(config.kind, task)
    accepted = set(cls().get_params())
    foreign = sorted(set(config.params) - accepted)
    if foreign:
        raise InvalidConfig(
            f"estimator.params: {', '.join(map(repr, foreign))} "
            f"{'is not a parameter' if len(foreign) == 1 else 'are not parameters'} of "
            f"{cls.__name__} (estimator '{config.kind}'); it takes "
            f"{', '.join(sorted(accepted))}"
        )
    params = {**DEFAULTS[config.kind], "random_state": config.seed, **config.params}
    if config.kind == "gradient_boosting" and "n_estimators" not in config.params:
        params["n_estimators"] = min(config.max_epochs, 100)
    try:
        estimator = cls(**params)
        _validate(estimator)
    except (TypeError, ValueError) as exc:
        raise InvalidConfig(f"estimator.params for {cls.__name__}: {exc}") from exc
    return estimator


def _validate(estimator: Any) -> None:
    """Check parameter values now rather than at the end of a long fit (scikit-learn >= 1.2)."""
    validate = getattr(estimator, "_validate_params", None)
    if validate is not None:
        validate()
