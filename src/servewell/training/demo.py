"""The reference case: scikit-learn's breast-cancer data, StandardScaler + MLP(64, 32),
through the same pipeline as ``servewell train`` (split, train, validate, checks, gate at
accuracy >= 0.90, register as ``breast-cancer@production``)."""

from __future__ import annotations

from servewell.training.config import PipelineConfig, parse_config
from servewell.training.data import Dataset, dataset_from_frame

DEMO_MODEL = "breast-cancer"
MIN_ACCURACY = 0.90
SEED = 42


def demo_dataset() -> Dataset:
    """The 569 rows x 30 features + ``target`` (0 malignant, 1 benign) bundled with sklearn."""
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame
    return dataset_from_frame(frame, "sklearn.datasets.load_breast_cancer")


def demo_config() -> PipelineConfig:
    return parse_config(
        {
            "name": DEMO_MODEL,
            "target": "target",
            "estimator": {
                "kind": "mlp",
                "params": {"hidden_layer_sizes": [64, 32]},
                "max_epochs": 500,
                "seed": SEED,
            },
            "split": {"validation_fraction": 0.2, "seed": SEED},
            "gate": {"min_accuracy": MIN_ACCURACY},
            "register": {"alias": "production"},
        },
        source="demo config",
    )
