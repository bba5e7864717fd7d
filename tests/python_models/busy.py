"""BusyModel: ``y = x``; a call holding a negative ``x`` computes for ever in C, holding
the GIL (after touching the file ``$BUSY_MODEL_MARKER`` names), so no Python thread of
its process runs again (signature: column.json)."""

import os
from pathlib import Path

import numpy as np


class BusyModel:
    def load(self, artifacts_dir: Path) -> None:
        pass

    def predict(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if (inputs["x"] < 0).any():
            Path(os.environ["BUSY_MODEL_MARKER"]).touch()
            sum(range(10**15))  # one C call: the interpreter never switches threads
        return {"y": inputs["x"]}
