"""LabelModel: ``label = 1`` where ``x > 0``, else 0 (signature: label.json): the same
input as column.json's models, another output."""

from pathlib import Path

import numpy as np


class LabelModel:
    def load(self, artifacts_dir: Path) -> None:
        pass

    def predict(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"label": (inputs["x"] > 0).astype(np.int64)}
