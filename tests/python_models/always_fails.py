"""AlwaysFailsModel: raises on every request (signature: column.json), except on the
all-zero batch that registration's proof and warm-up send, which it answers ``y = x``
so that it registers and loads."""

from pathlib import Path

import numpy as np


class AlwaysFailsModel:
    def load(self, artifacts_dir: Path) -> None:
        pass

    def predict(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if (inputs["x"] != 0).any():
            raise RuntimeError("this model always fails")
        return {"y": inputs["x"]}
