"""SwitchModel: ``y = x``, but raises while the file that ``config.json`` (in its
artifacts folder) names as ``fail_while`` exists (signature: column.json). A test
answers with it, then creates the file to make it fail (a model that answered an
input before and fails on it now: what the ``cache`` fallback is for)."""

import json
from pathlib import Path

import numpy as np


class SwitchModel:
    def load(self, artifacts_dir: Path) -> None:
        config = json.loads((artifacts_dir / "config.json").read_text(encoding="utf-8"))
        self.fail_while = Path(config["fail_while"])

    def predict(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self.fail_while.exists():
            raise RuntimeError(f"failing while {self.fail_while.name} exists")
        return {"y": inputs["x"]}
