"""ExitsEveryModel: ``y = x``, but every ``exit_every``-th call holding a non-zero ``x``
ends the process with ``os._exit(1)`` (signature: column.json).

``exit_every`` comes from ``config.json`` in its artifacts folder, 3 without one.
Warm-up sends zeros and does not count, so it loads and restarts cleanly.
"""

import json
import os
from pathlib import Path

import numpy as np


class ExitsEveryModel:
    def load(self, artifacts_dir: Path) -> None:
        config = artifacts_dir / "config.json"
        settings = json.loads(config.read_text(encoding="utf-8")) if config.exists() else {}
        self.exit_every = int(settings.get("exit_every", 3))
        self.calls = 0

    def predict(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if inputs["x"].any():
            self.calls += 1
            if self.calls % self.exit_every == 0:
                os._exit(1)
        return {"y": inputs["x"]}
