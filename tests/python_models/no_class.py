"""No model class: a helper class without load and predict, and a function."""

import numpy as np


class Scaler:
    def scale(self, x: np.ndarray) -> np.ndarray:
        return x * 2


def predict(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {"y": inputs["x"]}
