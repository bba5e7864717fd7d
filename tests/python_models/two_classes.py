"""Two model classes in one file (signature: column.json): register it with
``--class Doubler`` or ``--class Tripler``."""

from pathlib import Path

import numpy as np


class Doubler:
    def load(self, artifacts_dir: Path) -> None:
        pass

    def predict(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"y": inputs["x"] * 2}


class Tripler(Doubler):
    def predict(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"y": inputs["x"] * 3}
