"""SumModel: ``sum = x + y`` for each row, and what each call saw (signature: sum.json).

``rows_in_call`` is how many rows the call that answered a row held (batching, seen from
inside the model); ``calls`` is how many times this loaded model's predict has run,
this call included (warm-up counts; an answer from the response cache does not).
"""

from pathlib import Path

import numpy as np


class SumModel:
    def load(self, artifacts_dir: Path) -> None:
        self.calls = 0

    def predict(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.calls += 1
        rows = len(inputs["x"])
        return {
            "sum": inputs["x"] + inputs["y"],
            "rows_in_call": np.full(rows, rows, dtype=np.int64),
            "calls": np.full(rows, self.calls, dtype=np.int64),
        }
