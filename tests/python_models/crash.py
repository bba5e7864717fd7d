"""CrashModel: ``y = x``; a call holding a negative ``x`` ends the whole process at once
with exit status 1, as a segfault or an OOM kill would (signature: column.json). Warm-up
sends zeros, so it registers and loads."""

import os
from pathlib import Path

import numpy as np


class CrashModel:
    def load(self, artifacts_dir: Path) -> None:
        pass

    def predict(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if (inputs["x"] < 0).any():
            os._exit(1)
        return {"y": inputs["x"]}
