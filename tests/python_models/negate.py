"""NegateModel: ``y = -x``, after sleeping 100 ms on every call (signature: column.json):
a second version of the slow model whose answers tell the two apart."""

import time
from pathlib import Path

import numpy as np


class NegateModel:
    def load(self, artifacts_dir: Path) -> None:
        pass

    def predict(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        time.sleep(0.1)
        return {"y": -inputs["x"]}
