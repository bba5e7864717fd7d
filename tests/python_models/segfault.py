"""SegfaultModel: ``y = x``; a call holding a negative ``x`` kills its own process with
SIGSEGV, as a crash in native code would (signature: column.json). Warm-up sends zeros,
so it registers and loads."""

import os
import signal
from pathlib import Path

import numpy as np


class SegfaultModel:
    def load(self, artifacts_dir: Path) -> None:
        pass

    def predict(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if (inputs["x"] < 0).any():
            os.kill(os.getpid(), signal.SIGSEGV)
        return {"y": inputs["x"]}
