"""FailsWhileModel: ``y = x``, but every call raises while the file that ``config.json``
(in its artifacts folder) names as ``"flag"`` exists: a test makes it fail, then recover,
by creating and removing that file (signature: column.json)."""

import json
from pathlib import Path

import numpy as np


class FailsWhileModel:
    def load(self, artifacts_dir: Path) -> None:
        config = json.loads((artifacts_dir / "config.json").read_text(encoding="utf-8"))
        self.flag = Path(config["flag"])

    def predict(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self.flag.exists():
            raise RuntimeError(f"failing on purpose while {self.flag} exists")
        return {"y": inputs["x"]}
