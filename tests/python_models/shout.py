"""ShoutModel: a text model, ``answer = prompt.upper()`` (signature: text.json); a
prompt holding ``fail`` raises."""

from pathlib import Path

import numpy as np


class ShoutModel:
    def load(self, artifacts_dir: Path) -> None:
        pass

    def predict(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        prompts = [p.decode("utf-8") if isinstance(p, bytes) else str(p) for p in inputs["prompt"]]
        if any("fail" in prompt for prompt in prompts):
            raise RuntimeError("this prompt fails on purpose")
        return {"answer": np.array([p.upper() for p in prompts], dtype=object)}
