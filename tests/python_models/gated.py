"""GatedModel: ``y = x``, writing down every call and holding the ones a test gates
(signature: column.json).

Each call appends the ``x`` values it got, as one JSON line, to ``calls.log`` in the
folder the environment variable GATED_MODEL_DIR names (set by the test that serves it),
before it computes: the test counts the calls the model really received. A call holding
a negative ``x`` waits until the file ``open-<k>`` exists in that folder, where ``-k`` is
its smallest ``x`` (for at most 10 minutes, then it fails): the test decides when it
ends, so requests can queue behind it. Without the variable (registering it, where the
signature is proved on sample rows) it writes nothing and holds nothing.
"""

import json
import os
import time
from pathlib import Path

import numpy as np

MAX_WAIT_S = 600.0


class GatedModel:
    def load(self, artifacts_dir: Path) -> None:
        folder = os.environ.get("GATED_MODEL_DIR")
        self.folder = Path(folder) if folder else None

    def predict(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        x = inputs["x"]
        if self.folder is None:
            return {"y": x}
        with open(self.folder / "calls.log", "a", encoding="utf-8") as log:
            log.write(json.dumps([float(value) for value in x]) + "\n")
        lowest = float(x.min()) if len(x) else 0.0
        if lowest < 0:
            gate = self.folder / f"open-{int(-lowest)}"
            give_up_at = time.monotonic() + MAX_WAIT_S
            while not gate.exists():
                if time.monotonic() > give_up_at:
                    raise RuntimeError(f"{gate} never appeared")
                time.sleep(0.01)
        return {"y": x}
