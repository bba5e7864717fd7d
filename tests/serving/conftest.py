from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from serving_models import build_model_home


@pytest.fixture(scope="session")
def model_home(
    tmp_path_factory: pytest.TempPathFactory,
    classifier: object,
    iris: tuple[np.ndarray, np.ndarray],
) -> Path:
    return build_model_home(tmp_path_factory.mktemp("pool") / "home", classifier, iris[0])
