"""Small real PyTorch classifiers the torch tests share, trained in a second or two.

Tests that need torch call :func:`require_torch`: without torch they skip with the
reason, except in CI (``CI=true``), where a missing torch is a failure, not a skip.
The module classes live here (not in a test file) so a pickled module finds its class
again as ``torch_models.<Class>``.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

FEATURES = ("x1", "x2", "x3", "x4")
CLASSES = ("low", "mid", "high")
ROWS = 300


def require_torch() -> None:
    try:
        import torch  # noqa: F401
    except ImportError as exc:
        message = f"the torch format needs servewell[torch] ({exc.name} is missing)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def blobs(rows: int = ROWS, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three Gaussian blobs in 4-D: features float32 ``[rows, 4]``, class index ``[rows]``."""
    rng = np.random.default_rng(seed)
    target = rng.integers(0, len(CLASSES), rows)
    centres = np.array([[-2.0, 0, 1, 0], [0, 2, -1, 1], [2, -1, 0, -1]])
    features = centres[target] + rng.normal(0, 0.6, (rows, len(FEATURES)))
    return features.astype(np.float32), target


def signature_dict(labels: tuple[str | int, ...] = CLASSES) -> dict[str, Any]:
    label_type = "INT64" if all(isinstance(c, int) for c in labels) else "BYTES"
    return {
        "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, len(FEATURES)]}],
        "outputs": [
            {"name": "label", "datatype": label_type, "shape": [-1]},
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, len(labels)]},
        ],
        "feature_names": list(FEATURES),
        "class_labels": list(labels),
    }


def write_signature(folder: Path) -> Path:
    path = folder / "signature.json"
    path.write_text(json.dumps(signature_dict()), encoding="utf-8")
    return path


def write_eval_csv(folder: Path, rows: int = 200, seed: int = 1) -> Path:
    """Labelled rows the model was not trained on: columns x1..x4 and ``band``."""
    import pandas as pd

    features, target = blobs(rows, seed)
    frame = pd.DataFrame(features, columns=list(FEATURES))
    frame["band"] = [CLASSES[i] for i in target]
    path = folder / "eval.csv"
    frame.to_csv(path, index=False)
    return path


def train_mlp() -> Any:
    """A 4-32-3 MLP returning logits, trained with Adam on :func:`blobs` (eval mode)."""
    import torch

    from torch_modules import MLP

    torch.manual_seed(0)
    features, target = blobs()
    x, y = torch.tensor(features), torch.tensor(target)
    model = MLP()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(150):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    return model.eval()


def save_both(model: Any, folder: Path) -> dict[str, Path]:
    """``model`` as a TorchScript archive and as a whole pickled module."""
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    scripted, pickled = folder / "mlp-script.pt", folder / "mlp-pickle.pt"
    with warnings.catch_warnings():
        # torch 2.9+ deprecates TorchScript in favour of torch.export; users still have it.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(model), str(scripted))
    torch.save(model, str(pickled))
    return {"torchscript": scripted, "pickle": pickled}
