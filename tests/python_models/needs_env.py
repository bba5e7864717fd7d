"""NeedsEnvModel: ``y = x``; its load needs the credential a model that calls another
service would, from the environment variable NEEDS_ENV_TOKEN, and fails without it
(signature: column.json)."""

import os
from pathlib import Path

import numpy as np


class NeedsEnvModel:
    def load(self, artifacts_dir: Path) -> None:
        self.token = os.environ["NEEDS_ENV_TOKEN"]  # KeyError without it

    def predict(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"y": inputs["x"]}
