"""FlakyModel: ``y = x``, but every ``fail_every``-th call raises (signature: column.json).

``fail_every`` comes from ``config.json`` in its artifacts folder, 3 without one. Calls
count from load, warm-up included.
"""

import json
from pathlib import Path

import numpy as np


class FlakyModel:
    def load(self, artifacts_dir: Path) -> None:
        config = artifacts_dir / "config.json"
        settings = json.loads(config.read_text(encoding="utf-8")) if config.exists() else {}
        self.fail_every = int(settings.get("fail_every", 3))
        self.calls = 0

    def predict(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.calls += 1
        if self.calls % self.fail_every == 0:
            raise RuntimeError(f"call {self.calls} fails on purpose")
        return {"y": inputs["x"]}
