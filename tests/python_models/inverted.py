"""InvertedLabelModel: ``label = 0`` where ``x > 0``, else 1 (signature: label.json):
labels.py's model with every answer wrong, the worse release a rollback undoes."""

from pathlib import Path

import numpy as np


class InvertedLabelModel:
    def load(self, artifacts_dir: Path) -> None:
        pass

    def predict(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"label": (inputs["x"] <= 0).astype(np.int64)}
