"""The reference case: scikit-learn's breast-cancer data, StandardScaler + MLP(64, 32),
through the same pipeline as ``servewell train`` (split, train, validate, checks, gate at
accuracy >= 0.90, register as ``breast-cancer@production``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from servewell.training.config import PipelineConfig
    from servewell.training.data import Dataset

DEMO_MODEL = "breast-cancer"
MIN_ACCURACY = 0.90
SEED = 42


def demo_dataset() -> Dataset:
    """The 569 rows x 30 features + ``target`` (0 malignant, 1 benign) bundled with sklearn."""
    from sklearn.datasets import load_breast_cancer

    from servewell.training.data import dataset_from_frame

    frame = load_breast_cancer(as_frame=True).frame
    return dataset_from_frame(frame, "sklearn.datasets.load_breast_cancer")


def demo_config() -> PipelineConfig:
    from servewell.training.config import parse_config

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
            # 50 single-row predictions time a model this small well enough; the default
            # 200 were most of the checks' time on a loaded machine.
            "checks": {"latency_rows": 50},
            "gate": {"min_accuracy": MIN_ACCURACY},
            "register": {"alias": "production"},
        },
        source="demo config",
    )
