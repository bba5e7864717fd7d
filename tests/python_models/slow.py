"""SlowModel: ``y = x``, after sleeping ``sleep_ms`` on every call (signature: column.json).

``sleep_ms`` comes from ``config.json`` in its artifacts folder (slow_artifacts/ sleeps
100 ms); without one, load fails.
"""

import json
import time
from pathlib import Path

import numpy as np


class SlowModel:
    def load(self, artifacts_dir: Path) -> None:
        config = json.loads((artifacts_dir / "config.json").read_text(encoding="utf-8"))
        self.sleep_s = float(config["sleep_ms"]) / 1000

    def predict(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        time.sleep(self.sleep_s)
        return {"y": inputs["x"]}
