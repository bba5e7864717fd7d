"""WrongOutputModel: ``y = x``, except that a call holding one of these values of ``x``
answers off its signature (column.json): -1 names the output ``z``, -2 gives it two
columns, -3 gives text, -4 gives one row too many."""

from pathlib import Path

import numpy as np


class WrongOutputModel:
    def load(self, artifacts_dir: Path) -> None:
        pass

    def predict(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        x = inputs["x"]
        if (x == -1).any():
            return {"z": x}
        if (x == -2).any():
            return {"y": np.stack([x, x], axis=1)}
        if (x == -3).any():
            return {"y": np.array(["text"] * len(x))}
        if (x == -4).any():
            return {"y": np.concatenate([x, x[:1]])}
        return {"y": x}
