"""The reference case: scikit-learn's breast-cancer data, StandardScaler + MLP(64, 32)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from servewell.core.signature import FeatureRange, Signature
from servewell.errors import ServewellError
from servewell.pipeline.register import RegisterOptions, register_estimator
from servewell.registry import ModelVersion, RegistryAccess
from servewell.runtime.sklearn import signature_from_estimator

DEMO_MODEL = "breast-cancer"
MIN_ACCURACY = 0.90
SEED = 42


class DemoBelowThreshold(ServewellError):
    code = "demo_below_threshold"

    def __init__(self, accuracy: float) -> None:
        super().__init__(
            f"demo model reached test accuracy {accuracy:.3f}, below {MIN_ACCURACY}; "
            "nothing was registered"
        )


@dataclass(frozen=True)
class DemoResult:
    version: ModelVersion
    accuracy: float
    train_rows: int
    test_rows: int


def train_demo(access: RegistryAccess) -> DemoResult:
    """Train, check accuracy >= 0.90 on the held-out 20%, register with alias production."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    features, target = load_breast_cancer(return_X_y=True, as_frame=True)
    x_train, x_test, y_train, y_test = train_test_split(
        features, target, test_size=0.2, stratify=target, random_state=SEED
    )
    model = make_pipeline(
        StandardScaler(),
        MLPClassifier(hidden_layer_sizes=(64, 32), max_iter=500, random_state=SEED),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)
        model.fit(x_train, y_train)
    test = x_test.to_numpy(dtype=np.float32)
    accuracy = float(np.mean(model.predict(x_test) == y_test.to_numpy()))
    if accuracy < MIN_ACCURACY:
        raise DemoBelowThreshold(accuracy)
    signature = _with_ranges(signature_from_estimator(model), features)
    version = register_estimator(
        access,
        DEMO_MODEL,
        model,
        options=RegisterOptions(
            signature=signature,
            metrics={"accuracy": accuracy, "test_rows": len(x_test)},
            params={"estimator": "mlp", "hidden_layer_sizes": [64, 32], "seed": SEED},
            tags={"dataset": "sklearn.datasets.load_breast_cancer", "task": "classification"},
            alias="production",
            sample={"input": test},
            description="Breast-cancer diagnosis (malignant=0, benign=1) from 30 cell features",
        ),
    )
    return DemoResult(version, accuracy, len(x_train), len(x_test))


def _with_ranges(signature: Signature, features: object) -> Signature:
    """Physical bounds: these 30 measurements are never negative."""
    ranges = {name: FeatureRange(min=0.0) for name in signature.feature_names or ()}
    return signature.model_copy(update={"feature_ranges": ranges})
