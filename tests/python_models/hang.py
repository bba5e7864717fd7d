"""HangModel: ``y = x``; a call holding a negative ``x`` never returns (signature:
column.json). Warm-up sends zeros, so it registers and loads."""

import threading
from pathlib import Path

import numpy as np


class HangModel:
    def load(self, artifacts_dir: Path) -> None:
        self.never = threading.Event()

    def predict(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if (inputs["x"] < 0).any():
            self.never.wait()  # nobody sets it
        return {"y": inputs["x"]}
