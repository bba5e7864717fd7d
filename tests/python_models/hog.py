"""HogModel: ``y = x``, holding 64 MiB of memory from its load on (every page written,
so it is resident): a version whose memory the budget can measure (signature:
column.json)."""

from pathlib import Path

import numpy as np

HELD_BYTES = 64 * 2**20


class HogModel:
    def load(self, artifacts_dir: Path) -> None:
        self.held = np.ones(HELD_BYTES, dtype=np.uint8)

    def predict(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"y": inputs["x"]}
