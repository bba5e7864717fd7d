"""SlowClassifier: answers every row class 0 with certainty after sleeping ``sleep_ms``
per call (from ``config.json`` in its artifacts folder): bench/shadow.py's 200 ms shadow,
registered with the demo model's signature (one input, ``label`` and ``probabilities``)."""

import json
import time
from pathlib import Path

import numpy as np


class SlowClassifier:
    def load(self, artifacts_dir: Path) -> None:
        config = json.loads((artifacts_dir / "config.json").read_text(encoding="utf-8"))
        self.sleep_s = float(config["sleep_ms"]) / 1000

    def predict(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        time.sleep(self.sleep_s)
        rows = len(next(iter(inputs.values())))
        probabilities = np.zeros((rows, 2), dtype=np.float32)
        probabilities[:, 0] = 1.0
        return {"label": np.zeros(rows, dtype=np.int64), "probabilities": probabilities}
