"""Two classifiers of one input (signature: scores.json), to compare against each other:
register it with ``--class Linear`` or ``--class Squared``.

``Linear``: the probability of class 1 is ``p = clip(x / 10, 0, 1)``; ``Squared``: ``p**2``.
Each gives label 1 where that probability is above 0.5. So at x = 0, 8 and 10 they give
the same label, at x = 6 not; their probabilities differ by 0, 0.16, 0 and 0.24.
"""

from pathlib import Path

import numpy as np


class Linear:
    def load(self, artifacts_dir: Path) -> None:
        pass

    def probability(self, x: np.ndarray) -> np.ndarray:
        return np.clip(x / 10, 0, 1)

    def predict(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        p = self.probability(inputs["x"].astype(np.float32))
        return {
            "label": (p > 0.5).astype(np.int64),
            "probabilities": np.stack([1 - p, p], axis=1).astype(np.float32),
        }


class Squared(Linear):
    def probability(self, x: np.ndarray) -> np.ndarray:
        return np.clip(x / 10, 0, 1) ** 2
